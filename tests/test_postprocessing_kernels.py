"""Post-processing kernels: halo windows, Bayesian smoothing, regularisation, uncertainty."""

import math

import numpy as np
import pytest
from scipy import ndimage

from sitsmap.postprocessing.regularisation import (
    majority_filter,
    regularisation_halo,
    regularise,
    sieve,
)
from sitsmap.postprocessing.smoothing import bayes_smooth, smoothing_halo
from sitsmap.postprocessing.uncertainty import (
    UNCERTAINTY_MEASURES,
    entropy,
    least_confidence,
    margin,
    top_two,
)
from sitsmap.postprocessing.windows import apply_by_windows, halo_windows

# --------------------------------------------------------------------------- windows


@pytest.mark.parametrize(
    ("height", "width", "size", "halo"),
    [(10, 10, 5, 2), (17, 23, 5, 3), (7, 9, 20, 4), (1, 1, 1, 0), (33, 16, 7, 0), (12, 30, 4, 9)],
)
def test_halo_windows_cover_the_raster_exactly_once(height, width, size, halo):
    covered = np.zeros((height, width), dtype=int)
    starts = []
    for window in halo_windows(height, width, size, halo):
        core, read = window.core, window.read
        covered[core.toslices()] += 1
        starts.append((core.row_off, core.col_off))
        assert core.height <= size and core.width <= size
        # The read window is the core grown by the halo, clipped to the raster.
        assert read.row_off == max(0, core.row_off - halo)
        assert read.col_off == max(0, core.col_off - halo)
        assert read.row_off + read.height == min(height, core.row_off + core.height + halo)
        assert read.col_off + read.width == min(width, core.col_off + core.width + halo)
        rows, cols = window.inner
        assert read.row_off + rows.start == core.row_off and rows.stop - rows.start == core.height
        assert read.col_off + cols.start == core.col_off and cols.stop - cols.start == core.width
    assert (covered == 1).all()
    assert starts == sorted(starts)  # row-major


def test_halo_windows_reject_bad_sizes():
    with pytest.raises(ValueError, match="size"):
        list(halo_windows(10, 10, 0, 1))
    with pytest.raises(ValueError, match="halo"):
        list(halo_windows(10, 10, 4, -1))


def test_apply_by_windows_stitches_the_cores_of_a_neighbourhood_kernel():
    values = np.arange(13 * 11, dtype=float).reshape(13, 11) ** 1.5

    def box_max(a):  # reach 1, border outside; exact, unlike a running-sum mean
        return ndimage.maximum_filter(a, 3, mode="constant", cval=-np.inf)

    assert np.array_equal(apply_by_windows(values, box_max, 4, 1), box_max(values))
    assert np.array_equal(apply_by_windows(values, box_max, 5, 3), box_max(values))
    assert not np.array_equal(apply_by_windows(values, box_max, 4, 0), box_max(values))


# --------------------------------------------------------------------------- smoothing


def logit(p):
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def smooth_one_pixel(probabilities, valid, i, j, window, fraction, smoothness):
    """The sits estimator at one pixel, written out with numpy."""
    half = window // 2
    rows = slice(max(0, i - half), i + half + 1)
    cols = slice(max(0, j - half), j + half + 1)
    posterior = []
    for band in probabilities:
        x = logit(band)
        neighbours = np.sort(x[rows, cols][valid[rows, cols]])[::-1]
        n = max(1, math.ceil(fraction * neighbours.size))
        m0 = neighbours[:n].mean()
        s0 = neighbours[:n].var(ddof=1) if n > 1 else 0.0
        w = s0 / (s0 + smoothness)
        posterior.append(1 / (1 + np.exp(-(w * x[i, j] + (1 - w) * m0))))
    posterior = np.array(posterior)
    return posterior / posterior.sum()


@pytest.fixture(scope="module")
def probability_map():
    """3 classes on 45 x 38 pixels: smooth fields plus noise, some invalid pixels."""
    rng = np.random.default_rng(7)
    fields = ndimage.gaussian_filter(rng.normal(size=(3, 45, 38)), (0, 3, 3)) * 8
    scores = np.exp(fields + rng.normal(scale=0.7, size=fields.shape))
    probabilities = (scores / scores.sum(axis=0)).astype(np.float32)
    valid = rng.random((45, 38)) > 0.1
    valid[:6, :9] = False
    probabilities[:, ~valid] = np.nan
    return probabilities, valid


def test_smoothing_matches_the_estimator_written_out_on_a_3x3_map():
    p = np.array(
        [[[0.9, 0.8, 0.3], [0.7, 0.2, 0.6], [0.95, 0.5, 0.4]]],
        dtype=np.float32,
    )
    probabilities = np.concatenate([p, 1 - p])
    valid = np.ones((3, 3), dtype=bool)
    valid[0, 1] = False
    out = bayes_smooth(probabilities, valid, window_size=3, neighborhood_fraction=0.5, smoothness=2)
    for i, j in [(1, 1), (0, 0), (2, 2)]:
        expected = smooth_one_pixel(probabilities, valid, i, j, 3, 0.5, 2.0)
        np.testing.assert_allclose(out[:, i, j], expected, rtol=0, atol=2e-7)
    assert out[0, 1, 1] > 2 * p[0, 1, 1]  # the neighbourhood pulls the centre up


def test_smoothing_by_windows_equals_smoothing_the_whole_map(probability_map):
    probabilities, valid = probability_map

    def kernel(block):
        return bayes_smooth(block, ~np.isnan(block).any(axis=0), window_size=7)

    whole = kernel(probabilities)
    halo = smoothing_halo(7)
    assert halo == 3
    for size in (7, 16, 33, 100):
        windowed = apply_by_windows(probabilities, kernel, size, halo)
        assert np.array_equal(windowed, whole, equal_nan=True), size
    assert not np.array_equal(apply_by_windows(probabilities, kernel, 16, 1), whole, equal_nan=True)


def test_smoothing_outputs_probabilities_and_nan_off_the_valid_pixels(probability_map):
    probabilities, valid = probability_map
    out = bayes_smooth(probabilities, valid)
    assert out.dtype == np.float32 and out.shape == probabilities.shape
    assert np.isnan(out[:, ~valid]).all()
    assert np.isfinite(out[:, valid]).all()
    np.testing.assert_allclose(out[:, valid].sum(axis=0), 1, atol=1e-6)


def test_an_isolated_noisy_pixel_takes_the_class_of_its_field():
    probabilities = np.empty((2, 9, 9), dtype=np.float32)
    rng = np.random.default_rng(0)
    probabilities[0] = rng.uniform(0.8, 0.95, (9, 9))
    probabilities[0, 4, 4] = 0.2
    probabilities[1] = 1 - probabilities[0]
    out = bayes_smooth(probabilities, np.ones((9, 9), bool), window_size=5, smoothness=20)
    assert probabilities.argmax(axis=0)[4, 4] == 1
    assert (out.argmax(axis=0) == 0).all()


def test_a_tiny_smoothness_keeps_the_pixel_values():
    rng = np.random.default_rng(1)
    probabilities = rng.uniform(0.05, 0.95, (4, 12, 10)).astype(np.float32)
    out = bayes_smooth(probabilities, np.ones((12, 10), bool), smoothness=1e-9)
    np.testing.assert_allclose(out, probabilities / probabilities.sum(axis=0), atol=1e-6)
    # ... whereas the default smoothness moves them.
    default = bayes_smooth(probabilities, np.ones((12, 10), bool))
    assert np.abs(default - probabilities / probabilities.sum(axis=0)).max() > 0.05


def test_smoothness_is_one_value_or_one_per_class(probability_map):
    probabilities, valid = probability_map
    same = bayes_smooth(probabilities, valid, 5, 0.5, [10.0, 10.0, 10.0])
    assert np.array_equal(same, bayes_smooth(probabilities, valid, 5, 0.5, 10.0), equal_nan=True)
    mixed = bayes_smooth(probabilities, valid, 5, 0.5, [10.0, 1e-9, 10.0])
    assert not np.array_equal(mixed, same, equal_nan=True)
    with pytest.raises(ValueError, match="smoothness"):
        bayes_smooth(probabilities, valid, 5, 0.5, [1.0, 2.0])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"window_size": 4}, "window_size"),
        ({"window_size": 0}, "window_size"),
        ({"neighborhood_fraction": 0.0}, "neighborhood_fraction"),
        ({"neighborhood_fraction": 1.5}, "neighborhood_fraction"),
        ({"smoothness": 0.0}, "smoothness"),
    ],
)
def test_smoothing_rejects_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        bayes_smooth(np.full((2, 3, 3), 0.5, np.float32), np.ones((3, 3), bool), **arguments)


# --------------------------------------------------------------------------- majority filter


def test_majority_filter_removes_salt_and_keeps_a_straight_border():
    salt = np.ones((5, 5), dtype=np.uint8)
    salt[2, 2] = 2
    assert (majority_filter(salt, 3) == 1).all()
    halves = np.ones((6, 6), dtype=np.uint16)
    halves[:, 3:] = 2
    out = majority_filter(halves, 3)
    assert out.dtype == np.uint16
    assert np.array_equal(out, halves)


def test_majority_filter_ties_keep_the_own_class_else_take_the_smallest():
    kept = np.array([[2, 2, 0], [3, 3, 0], [0, 0, 0]], dtype=np.uint8)
    assert np.array_equal(majority_filter(kept, 3), kept)  # every pixel: 2 against 2
    classes = np.array([[4, 4, 0], [2, 1, 0], [2, 0, 0]], dtype=np.uint8)
    expected = np.array([[4, 4, 0], [2, 2, 0], [2, 0, 0]], dtype=np.uint8)
    assert np.array_equal(majority_filter(classes, 3), expected)


def test_majority_filter_never_fills_or_counts_nodata():
    classes = np.full((5, 5), 255, dtype=np.uint8)
    classes[2, :] = 7
    classes[2, 2] = 255
    out = majority_filter(classes, 5, nodata=255)
    assert np.array_equal(out, classes)  # nodata majority around, yet the row stays 7


# --------------------------------------------------------------------------- sieve


def place(classes, top, left, shape, code):
    classes[top : top + shape[0], left : left + shape[1]] = code


def test_sieve_removes_exactly_the_patches_below_min_pixels():
    classes = np.ones((20, 40), dtype=np.uint8)
    classes[0, :] = 0  # nodata row on top
    kept = classes.copy()
    patches = [((3, 2), (1, 1), 2), ((3, 8), (1, 2), 3), ((3, 14), (3, 1), 2), ((3, 20), (2, 2), 3)]
    patches += [((3, 28), (1, 5), 2), ((12, 5), (3, 3), 3), ((12, 20), (1, 1), 5)]
    for (top, left), shape, code in patches:
        place(classes, top, left, shape, code)
        if shape[0] * shape[1] >= 4:
            place(kept, top, left, shape, code)
    out = sieve(classes, 4)
    assert np.array_equal(out, kept)  # sizes 1, 2, 3 gone, 4, 5 and 9 bit-identical
    assert (out[0] == 0).all()
    assert np.array_equal(sieve(classes, 1), classes)
    assert np.array_equal(sieve(classes, 0), classes)


@pytest.mark.parametrize(("column", "expected"), [(4, 1), (5, 2)])
def test_a_small_patch_takes_the_class_of_its_longest_border(column, expected):
    classes = np.ones((10, 10), dtype=np.uint8)
    classes[:, 5:] = 2
    classes[4:6, column] = 3  # 4 edges on its own side, 2 on the other
    out = sieve(classes, 4)
    assert out[4, column] == out[5, column] == expected
    assert (out != 3).all()


@pytest.mark.parametrize(("corner_code", "expected"), [(1, 1), (4, 2)])
def test_a_tie_between_large_neighbours_goes_to_the_smallest_code(corner_code, expected):
    classes = np.full((10, 10), 2, dtype=np.uint8)
    classes[:5, :] = corner_code
    classes[:, :5] = corner_code
    classes[5, 5] = 3  # up and left: corner_code, down and right: 2
    assert sieve(classes, 4)[5, 5] == expected


def test_large_neighbours_win_over_small_ones():
    classes = np.ones((11, 11), dtype=np.uint8)
    for pixel in [(4, 5), (4, 4), (5, 4), (6, 4), (6, 5)]:
        classes[pixel] = 5  # a 5-pixel patch wrapping three sides of ...
    classes[5, 5] = 3  # ... this one: 3 edges with the small patch 5, 1 with the field
    assert (sieve(classes, 6) == 1).all()
    assert (sieve(classes, 6, max_passes=1) == 1).all()  # all judged at once, one pass


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ([1, 2, 2], [2, 2, 2]),  # the smaller patch merges into the larger: no swap
        ([2, 2, 1], [2, 2, 2]),
        ([1, 1, 2, 2], [1, 1, 1, 1]),  # as large: the larger code merges into the smaller
        ([2, 2, 1, 1], [1, 1, 1, 1]),
        ([3, 1, 1, 2, 2, 2], [2, 2, 2, 2, 2, 2]),  # 3 -> 1 and 1 -> 2 at once, then 2
        ([4, 3, 3, 4, 4, 4], [4, 4, 4, 4, 4, 4]),  # 3 -> 4 merges the whole row
    ],
)
def test_small_patches_among_small_ones_merge_into_the_ones_that_outrank_them(row, expected):
    classes = np.zeros((3, len(row) + 2), dtype=np.uint8)  # walled by nodata
    classes[1, 1:-1] = row
    out = sieve(classes, 10)
    assert out[1, 1:-1].tolist() == expected
    assert (out[[0, 2]] == 0).all() and (out[:, [0, -1]] == 0).all()
    assert np.array_equal(sieve(out, 10), out)  # a fixed point: nothing left to move


def test_a_small_patch_with_only_nodata_around_stays():
    classes = np.zeros((5, 5), dtype=np.uint16)
    classes[2, 2] = 3
    classes[0, 0] = 4
    assert np.array_equal(sieve(classes, 4), classes)
    classes[1:4, 4] = 1  # a field touching nothing but nodata and ...
    classes[2, 3] = 6  # ... this pixel (its other neighbours are nodata)
    one_pass = sieve(classes, 3, max_passes=1)
    assert one_pass.dtype == np.uint16
    assert one_pass[2, 3] == 1  # its only large neighbour; nodata does not count
    assert one_pass[2, 2] == 3  # its only neighbour, as large, does not outrank it: it waits
    out = sieve(classes, 3)
    assert out[2, 3] == 1
    assert out[2, 2] == 1  # second pass: now next to the field
    assert out[0, 0] == 4
    assert (out[classes == 0] == 0).all()


def nested_squares():
    """20 x 20 of class 1 holding 9 x 9 of class 2 holding 5 x 5 of class 3."""
    classes = np.ones((20, 20), dtype=np.uint8)
    place(classes, 5, 5, (9, 9), 2)
    place(classes, 7, 7, (5, 5), 3)
    return classes


def test_nested_small_patches_are_all_removed():
    classes = nested_squares()
    for out in (regularise(classes, 3, 60), sieve(classes, 60)):
        assert (out == 1).all()
    # One pass judges the 56-pixel ring and the 25-pixel block at once: the ring goes to
    # the field and the block takes the ring's class, a small patch the next pass removes.
    one_pass = sieve(classes, 60, max_passes=1)
    assert (one_pass == 2).sum() == 25 and (one_pass[classes == 3] == 2).all()


def patch_sizes(classes, nodata=0):
    """Per pixel, the size of its patch (0 on nodata), and whether the patch has a neighbour."""
    size = np.zeros(classes.shape, dtype=int)
    has_neighbour = np.zeros(classes.shape, dtype=bool)
    valid = classes != nodata
    for code in np.unique(classes[valid]):
        labels, count = ndimage.label(classes == code)
        counts = np.bincount(labels.ravel())
        size[labels > 0] = counts[labels[labels > 0]]
        # Pixels of other classes 4-next to the code, then the patches 4-next to those.
        others = ndimage.binary_dilation(labels > 0) & valid & (classes != code)
        near = np.unique(labels[ndimage.binary_dilation(others) & (labels > 0)])
        has_neighbour |= np.isin(labels, near[near > 0])
    return size, has_neighbour


def reference_sieve(classes, min_pixels, nodata=0, max_passes=8):
    """The sieve's rule written out patch by patch, relabelling the map at every pass."""
    out = np.array(classes)
    rows, cols = out.shape
    for _ in range(max_passes):
        labels = np.zeros(out.shape, dtype=int)
        count = 0
        for code in np.unique(out[out != nodata]):
            lab, k = ndimage.label(out == code)
            labels[lab > 0] = lab[lab > 0] + count
            count += k
        sizes = np.bincount(labels.ravel(), minlength=count + 1)
        codes = {label: int(out[labels == label][0]) for label in range(1, count + 1)}
        new = out.copy()
        for patch in range(1, count + 1):
            if sizes[patch] >= min_pixels:
                continue
            border = {}  # neighbouring patch: shared border
            for i, j in zip(*np.nonzero(labels == patch), strict=True):
                for a, b in ((i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)):
                    if 0 <= a < rows and 0 <= b < cols and labels[a, b] not in (0, patch):
                        border[labels[a, b]] = border.get(labels[a, b], 0) + 1
            large = {}  # class of the large neighbours: shared border
            for other, length in border.items():
                if sizes[other] >= min_pixels:
                    large[codes[other]] = large.get(codes[other], 0) + length
            if large:
                new[labels == patch] = min(large, key=lambda code: (-large[code], code))
                continue
            outranking = [
                (-sizes[other], -length, codes[other])
                for other, length in border.items()
                if (sizes[other], -codes[other]) > (sizes[patch], -codes[patch])
            ]
            if outranking:
                new[labels == patch] = min(outranking)[2]
        if np.array_equal(new, out):
            break
        out = new
    return out


@pytest.mark.parametrize("seed", range(6))
def test_the_sieve_matches_its_rule_written_out(seed):
    rng = np.random.default_rng(seed)
    for _ in range(6):
        shape = tuple(rng.integers(2, 18, 2))
        field = ndimage.gaussian_filter(rng.normal(size=shape), rng.uniform(0.4, 2))
        classes = np.digitize(field, np.quantile(field, [0.25, 0.5, 0.75])).astype(np.uint8)
        noise = rng.random(shape) < 0.15
        classes[noise] = rng.integers(0, 5, noise.sum())
        min_pixels, max_passes = int(rng.integers(2, 10)), int(rng.integers(1, 6))
        nodata = int(rng.integers(0, 2))  # nodata 1: class 0 is a class
        expected = reference_sieve(classes, min_pixels, nodata, max_passes)
        assert np.array_equal(sieve(classes, min_pixels, nodata, max_passes), expected)


def test_sieve_rejects_bad_arguments():
    with pytest.raises(ValueError, match="min_pixels"):
        sieve(np.ones((3, 3), np.uint8), -1)
    with pytest.raises(ValueError, match="max_passes"):
        sieve(np.ones((3, 3), np.uint8), 4, max_passes=0)
    with pytest.raises(ValueError, match="2-D"):
        sieve(np.ones(3, np.uint8), 4)


# --------------------------------------------------------------------------- regularisation


def nested_blobby_map(seed, shape=(90, 75)):
    """7 classes: a thresholded smooth random field, nested squares, salt noise, nodata."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.normal(size=shape), 3)
    classes = (np.digitize(field, np.quantile(field, [0.2, 0.4, 0.6, 0.8])) + 1).astype(np.uint8)
    for _ in range(25):  # squares inside squares, of any class
        top, left = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        side = int(rng.integers(3, 14))
        while side >= 1:
            place(classes, top, left, (side, side), rng.integers(1, 8))
            step = int(rng.integers(1, 3))
            top, left, side = top + step, left + step, side - 2 * step
    salt = rng.random(shape) < 0.08
    classes[salt] = rng.integers(1, 8, salt.sum())
    classes[rng.random(shape) < 0.03] = 0
    classes[:8, :15] = 0
    return classes


@pytest.fixture(scope="module")
def blobby_map():
    return nested_blobby_map(11)


@pytest.mark.parametrize("seed", [11, 12])
@pytest.mark.parametrize("min_pixels", [5, 12])
def test_the_sieve_removes_exactly_the_patches_below_the_unit(seed, min_pixels):
    classes = majority_filter(nested_blobby_map(seed), 3)
    size, _ = patch_sizes(classes)
    out = sieve(classes, min_pixels, max_passes=100)
    assert np.array_equal(out == 0, classes == 0)
    # The large patches keep their pixels, bit for bit ...
    large = size >= min_pixels
    assert np.array_equal(out[large], classes[large])
    # ... and the only small patches left have no classed neighbour.
    size_after, has_neighbour = patch_sizes(out)
    assert not (has_neighbour & (size_after > 0) & (size_after < min_pixels)).any()
    assert (size[(size > 0) & (size < min_pixels)] > 0).any()  # there were some
    assert np.array_equal(sieve(classes, min_pixels), out)  # 8 passes were enough here


@pytest.mark.parametrize(
    ("window_size", "min_pixels", "max_passes"),
    [(3, 4, 8), (5, 10, 8), (1, 3, 8), (3, 6, 2), (1, 12, 3)],
)
def test_regularise_by_windows_equals_regularising_the_whole_map(
    blobby_map, window_size, min_pixels, max_passes
):
    whole = regularise(blobby_map, window_size, min_pixels, max_passes=max_passes)
    assert whole.dtype == np.uint8
    assert np.array_equal(whole == 0, blobby_map == 0)  # nodata neither filled nor made
    assert (whole != blobby_map).mean() > 0.05

    def kernel(block):
        return regularise(block, window_size, min_pixels, max_passes=max_passes)

    halo = regularisation_halo(window_size, min_pixels, max_passes)
    for size in (7, 16, 33, 64):
        assert np.array_equal(apply_by_windows(blobby_map, kernel, size, halo), whole), size
    too_small = window_size // 2 + 1
    assert not np.array_equal(apply_by_windows(blobby_map, kernel, 7, too_small), whole)


def test_the_halo_is_needed_in_full_for_two_passes():
    # A strip walled by nodata, which a read window cuts at column 4. On the whole map
    # the first pass gives columns 6-7 (1 1) to the 4-field, 8-9 (2 2) class 1, 10-11
    # (4 4) class 2, each to the neighbour that outranks it, and column 12 to the
    # 3-field; the second pass gives 8-9 to the 4-field and 10-11 to the 3-field. In the
    # window the cut 4-field is small: it takes class 1, and the 6 pixels of class 1 win
    # 10-11 at the second pass (a tie of borders with the 3-field). Column 11 is 7 pixels
    # in from the cut: the two passes need the halo of 8 in full.
    row = [4] * 6 + [1, 1, 2, 2, 4, 4, 1, 3, 3, 3, 1, 3, 3, 3, 1, 1, 4, 4, 4]
    classes = np.zeros((3, len(row)), dtype=np.uint8)
    classes[1] = row
    halo = regularisation_halo(1, 3, max_passes=2)
    assert halo == 2 * (2 * 3 - 2) == 8
    whole = sieve(classes, 3, max_passes=2)
    cut = sieve(classes[:, 4:], 3, max_passes=2)
    differ = np.flatnonzero((cut != whole[:, 4:]).any(axis=0))
    assert differ.max() == halo - 1
    assert whole[1, 11] == 3 and cut[1, 7] == 1

    def kernel(block):
        return sieve(block, 3, max_passes=2)

    # Cores of 11 columns: the second one reads from column 11 - halo.
    assert np.array_equal(apply_by_windows(classes, kernel, 11, halo), whole)
    assert not np.array_equal(apply_by_windows(classes, kernel, 11, halo - 1), whole)


def test_regularisation_halo():
    assert regularisation_halo(3, 4) == 1 + 8 * 6
    assert regularisation_halo(5, 10) == 2 + 8 * 18
    assert regularisation_halo(3, 10, max_passes=2) == 1 + 2 * 18
    assert regularisation_halo(3, 1) == regularisation_halo(3, 0) == 1  # no sieve


# --------------------------------------------------------------------------- uncertainty


def vectors(*ps):
    return np.array(ps, dtype=np.float64).T  # (n_classes, n_pixels)


def test_uncertainty_of_known_probability_vectors():
    p = vectors([1, 0, 0], [1 / 3] * 3, [0.5, 0.3, 0.2], [0.2, 0.5, 0.3])
    np.testing.assert_allclose(entropy(p), [0, 1, 0.9372306, 0.9372306], atol=1e-6)
    np.testing.assert_allclose(margin(p), [0, 1, 0.8, 0.8], atol=1e-6)
    np.testing.assert_allclose(least_confidence(p), [0, 2 / 3, 0.5, 0.5], atol=1e-6)
    for function in (entropy, margin, least_confidence):
        assert function(p).dtype == np.float32
    assert {
        "entropy": entropy,
        "margin": margin,
        "least": least_confidence,
    } == UNCERTAINTY_MEASURES


def test_uncertainty_is_nan_where_a_band_is_nan():
    p = np.full((3, 2, 2), 1 / 3)
    p[1, 0, 1] = np.nan
    for measure in UNCERTAINTY_MEASURES.values():
        out = measure(p)
        assert out.shape == (2, 2)
        assert np.isnan(out[0, 1]) and np.isfinite(np.delete(out.ravel(), 1)).all()


def test_top_two_codes_and_probabilities():
    p = vectors([0.1, 0.6, 0.3], [0.45, 0.1, 0.45], [0.2, 0.3, 0.5], [np.nan, 0.5, 0.5])
    codes = np.array([10, 20, 30], dtype=np.uint8)
    first, first_p, second, second_p = top_two(p, codes)
    assert first.tolist() == [20, 10, 30, 0]  # a tie goes to the first band
    assert second.tolist() == [30, 30, 20, 0]
    assert first.dtype == second.dtype == np.uint8
    np.testing.assert_allclose(first_p[:3], [0.6, 0.45, 0.5])
    np.testing.assert_allclose(second_p[:3], [0.3, 0.45, 0.3])
    assert np.isnan(first_p[3]) and np.isnan(second_p[3])
    assert first_p.dtype == second_p.dtype == np.float32
