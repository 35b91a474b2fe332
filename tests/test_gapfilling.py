import numpy as np
import pytest

from sitsmap.preprocessing.gapfilling import GapfillStream, gapfill, gapfill_into
from sitsmap.preprocessing.indices import brightness, normalized_difference


def gapfill_reference(values, valid, dates, out_dates):
    """Per-pixel, per-band np.interp over the valid dates; 0 where none is valid."""
    n_dates, n_bands, n_pixels = values.shape
    out = np.zeros((len(out_dates), n_bands, n_pixels))
    for pixel in range(n_pixels):
        usable = valid[:, pixel]
        if not usable.any():
            continue
        for band in range(n_bands):
            series = values[usable, band, pixel].astype(np.float64)
            out[:, band, pixel] = np.interp(out_dates, dates[usable], series)
    return out


def one_pixel(series, valid):
    values = np.array(series, dtype=np.float32).reshape(-1, 1, 1)
    return values, np.array(valid, dtype=bool).reshape(-1, 1)


def test_interpolates_between_valid_dates_by_hand():
    values, valid = one_pixel([0, 999, 20], [True, False, True])
    out = gapfill(values, valid, np.array([0.0, 10, 20]), np.array([5.0]))
    assert out.dtype == np.float32
    assert out.shape == (1, 1, 1)
    assert out[0, 0, 0] == pytest.approx(5.0)


def test_extrapolates_constant_before_and_after():
    values, valid = one_pixel([0, 999, 20], [True, False, True])
    out_dates = np.array([-5.0, 0, 5, 10, 15, 20, 25])
    out = gapfill(values, valid, np.array([0.0, 10, 20]), out_dates)
    np.testing.assert_allclose(out[:, 0, 0], [0, 0, 5, 10, 15, 20, 20])


def test_single_valid_date_fills_the_whole_series():
    values, valid = one_pixel([3, 7, 11], [False, True, False])
    out = gapfill(values, valid, np.array([0.0, 10, 20]), np.array([-10.0, 0, 10, 30]))
    np.testing.assert_array_equal(out[:, 0, 0], [7, 7, 7, 7])


def test_pixel_without_valid_date_is_zero_and_flagged_even_with_nan_values():
    values = np.full((3, 2, 2), np.nan, dtype=np.float32)
    values[:, :, 1] = [[1, 2], [3, 4], [5, 6]]
    valid = np.array([[False, True], [False, True], [False, True]])
    out = gapfill(values, valid, np.array([0.0, 1, 2]), np.array([0.5, 1.5]))
    np.testing.assert_array_equal(out[:, :, 0], 0)
    np.testing.assert_allclose(out[:, :, 1], [[2, 3], [4, 5]])
    assert valid.any(axis=0).tolist() == [False, True]


def test_all_bands_share_the_dates_weights_and_scale_applies():
    values = np.array([[[100], [1000]], [[300], [3000]]], dtype=np.int16)  # (T=2, B=2, N=1)
    valid = np.ones((2, 1), dtype=bool)
    out = gapfill(values, valid, np.array([0.0, 4]), np.array([1.0]), scale=1e-4)
    np.testing.assert_allclose(out[0, :, 0], [0.015, 0.15], rtol=1e-6)


def test_image_shaped_input_keeps_its_shape():
    rng = np.random.default_rng(1)
    values = rng.integers(0, 5000, (5, 3, 4, 6), dtype=np.int16)
    valid = rng.random((5, 4, 6)) > 0.3
    out = gapfill(values, valid, np.arange(5.0) * 3, np.arange(4.0) * 4)
    assert out.shape == (4, 3, 4, 6)
    flat = gapfill(
        values.reshape(5, 3, 24), valid.reshape(5, 24), np.arange(5.0) * 3, np.arange(4.0) * 4
    )
    np.testing.assert_array_equal(out.reshape(4, 3, 24), flat)


@pytest.mark.parametrize(
    ("n_dates", "n_bands", "n_pixels", "n_out", "dtype"),
    [
        (1, 1, 7, 3, np.int16),
        (9, 3, 300, 12, np.int16),
        (40, 10, 1000, 37, np.int16),
        (17, 2, 513, 5, np.float32),
    ],
)
def test_kernel_matches_numpy_reference(n_dates, n_bands, n_pixels, n_out, dtype):
    rng = np.random.default_rng(n_dates * 1000 + n_pixels)
    values = rng.integers(-500, 10000, (n_dates, n_bands, n_pixels)).astype(dtype)
    valid = rng.random((n_dates, n_pixels)) < rng.uniform(0.05, 0.9, n_pixels)
    valid[:, :5] = False  # all invalid
    valid[:, 5:10] = True  # all valid
    dates = np.sort(rng.choice(400, n_dates, replace=False)).astype(np.float64)
    out_dates = np.sort(rng.uniform(-30, 430, n_out))
    out_dates[0] = dates[0]  # exactly on an acquisition
    out_dates.sort()
    expected = gapfill_reference(values, valid, dates, out_dates)
    actual = gapfill(values, valid, dates, out_dates)
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-3)
    assert not actual[:, :, :5].any()


def test_gapfill_into_writes_a_strided_view_and_counts_valid_dates():
    rng = np.random.default_rng(2)
    values = rng.integers(0, 3000, (6, 3, 50), dtype=np.int16)
    valid = rng.random((6, 50)) > 0.5
    dates, out_dates = np.arange(6.0) * 5, np.arange(4.0) * 8
    band_major = np.empty((3 * 4, 50), dtype=np.float32)
    view = band_major.reshape(3, 4, 50).transpose(1, 0, 2)
    counts = gapfill_into(values, valid, dates, out_dates, view)
    np.testing.assert_array_equal(counts, valid.sum(axis=0))
    assert counts.dtype == np.uint16
    expected = gapfill(values, valid, dates, out_dates)  # (T_out, B, N)
    np.testing.assert_array_equal(band_major.reshape(3, 4, 50), expected.transpose(1, 0, 2))


def test_rejects_unsorted_dates_and_mismatched_shapes():
    values, valid = one_pixel([1, 2], [True, True])
    with pytest.raises(ValueError, match="sorted"):
        gapfill(values, valid, np.array([5.0, 1.0]), np.array([2.0]))
    with pytest.raises(ValueError):
        gapfill(values, valid[:1], np.array([0.0, 1.0]), np.array([2.0]))


def test_strided_views_are_read_in_place_with_the_same_result():
    rng = np.random.default_rng(3)
    pixels_last = rng.integers(0, 5000, (7, 6, 5, 4), dtype=np.int16)  # (T, H, W, B)
    valid = rng.random((7, 6, 5)) > 0.3
    dates, out_dates = np.arange(7.0) * 6, np.arange(5.0) * 9
    view = np.moveaxis(pixels_last, 3, 1)  # (T, B, H, W), not contiguous
    assert not view.flags.c_contiguous
    expected = gapfill(np.ascontiguousarray(view), valid, dates, out_dates)
    np.testing.assert_array_equal(gapfill(view, valid, dates, out_dates), expected)


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((12, 3, 4, 5), np.int16), ((30, 10, 9, 70), np.int16), ((30, 4, 6, 9), np.float64)],
)
def test_stream_gives_the_same_floats_as_the_batch_kernel(shape, dtype):
    rng = np.random.default_rng(sum(shape))
    n_dates, n_bands, height, width = shape
    values = rng.integers(-100, 10000, shape).astype(dtype)
    if dtype == np.float64:  # reflectances that are not integers
        values += rng.random(shape)
    valid = rng.random((n_dates, height, width)) < 0.5
    valid[:, 0, :2] = False
    valid[:, 1, :2] = True
    dates = np.sort(rng.choice(300, n_dates, replace=False)).astype(np.float64)
    out_dates = np.sort(np.concatenate([rng.uniform(-20, 320, 9), dates[[0, 5, -1]]]))
    expected = gapfill(values, valid, dates, out_dates, scale=1e-4)
    out = np.full((len(out_dates), n_bands, height, width), np.nan, dtype=np.float32)
    stream = GapfillStream(out_dates, out, scale=1e-4)
    for day, date_values, date_valid in zip(dates, values, valid, strict=True):
        stream.add(day, date_values, date_valid)
    counts = stream.finish()
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(counts, valid.sum(axis=0))
    at_once = np.full_like(out, np.nan)
    stream = GapfillStream(out_dates, at_once, scale=1e-4)
    stream.add_series(dates, values, valid)
    np.testing.assert_array_equal(stream.finish(), counts)
    np.testing.assert_array_equal(at_once, expected)


def test_stream_refuses_dates_out_of_order():
    out = np.zeros((2, 1, 1, 1), dtype=np.float32)
    stream = GapfillStream(np.array([0.0, 5.0]), out)
    stream.add(3.0, np.ones((1, 1, 1), np.int16), np.ones((1, 1), bool))
    with pytest.raises(ValueError, match="in order"):
        stream.add(1.0, np.ones((1, 1, 1), np.int16), np.ones((1, 1), bool))


def test_stream_derives_the_indices_with_the_same_floats_as_the_index_functions():
    rng = np.random.default_rng(3)
    n_dates, n_bands, height, width = 25, 4, 6, 33
    values = rng.integers(-50, 10000, (n_dates, n_bands, height, width)).astype(np.int16)
    values[:, :, 0, 0] = 0  # zero denominators
    valid = rng.random((n_dates, height, width)) < 0.6
    valid[rng.random(n_dates) < 0.3] = False  # wholly masked dates
    valid[:, 1, 1] = False  # a pixel never seen
    dates = np.sort(rng.choice(300, n_dates, replace=False)).astype(np.float64)
    out_dates = np.sort(np.concatenate([rng.uniform(-20, 320, 12), dates[[0, 7, -1]]]))
    pairs = [(2, 1), (0, 3), (-1, -1)]
    out = np.empty((len(out_dates), n_bands, height, width), dtype=np.float32)
    derived = np.full((len(out_dates), len(pairs), height, width), np.nan, dtype=np.float32)
    stream = GapfillStream(out_dates, out, 1e-4, derived=derived, derived_from=pairs)
    for day, date_values, date_valid in zip(dates, values, valid, strict=True):
        stream.add(day, date_values, date_valid)
    np.testing.assert_array_equal(stream.finish(), valid.sum(axis=0))
    np.testing.assert_array_equal(out, gapfill(values, valid, dates, out_dates, scale=1e-4))
    np.testing.assert_array_equal(derived[:, 0], normalized_difference(out[:, 2], out[:, 1]))
    np.testing.assert_array_equal(derived[:, 1], normalized_difference(out[:, 0], out[:, 3]))
    np.testing.assert_array_equal(derived[:, 2], brightness(out, axis=1))
    assert not derived[:, :, 1, 1].any()


def test_stream_refuses_derived_variables_it_cannot_compute():
    out = np.zeros((2, 3, 1, 1), dtype=np.float32)
    derived = np.zeros((2, 1, 1, 1), dtype=np.float32)
    with pytest.raises(ValueError, match="band positions"):
        GapfillStream(np.array([0.0, 5.0]), out, derived=derived, derived_from=[(0, 3)])
    with pytest.raises(ValueError, match="derived must be"):
        GapfillStream(np.array([0.0, 5.0]), out, derived=derived, derived_from=[(0, 1), (-1, -1)])
    with pytest.raises(ValueError, match="without a derived array"):
        GapfillStream(np.array([0.0, 5.0]), out, derived_from=[(0, 1)])


def test_stream_takes_more_dates_than_its_narrow_state_holds():
    # The position of a pixel's last valid date is int16 until there are more dates.
    n_dates = 2**15 + 3
    out_dates = np.array([-1.0, 2**15 - 0.5, n_dates + 1.0])
    out = np.empty((3, 1, 1, 2), dtype=np.float32)
    stream = GapfillStream(out_dates, out)
    for day in range(n_dates):
        stream.add(float(day), np.full((1, 1, 2), day % 1000, np.int16), np.array([[True, False]]))
    np.testing.assert_array_equal(stream.finish(), [[min(n_dates, 65535), 0]])
    expected = [0.0, 767.5, float((n_dates - 1) % 1000)]  # 767 at 32767, 768 at 32768
    np.testing.assert_array_equal(out[:, 0, 0, 0], expected)
    assert not out[:, 0, 0, 1].any()
