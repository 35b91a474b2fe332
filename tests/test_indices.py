import numpy as np
import pytest

from sitsmap.preprocessing.indices import (
    brightness,
    brightness_into,
    ndvi,
    ndwi,
    normalized_difference,
    normalized_difference_into,
)


def test_ndvi_on_hand_values():
    red = np.array([0.1, 0.2, 0.3])
    nir = np.array([0.5, 0.2, 0.1])
    result = ndvi(red, nir)
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, [0.4 / 0.6, 0.0, -0.2 / 0.4], rtol=1e-6)


def test_ndwi_is_swir_minus_nir_over_their_sum():
    swir = np.array([0.3, 0.1], dtype=np.float32)
    nir = np.array([0.1, 0.3], dtype=np.float32)
    np.testing.assert_allclose(ndwi(swir, nir), [0.5, -0.5], rtol=1e-6)


def test_zero_denominators_give_zero_not_nan():
    zeros = np.zeros(3, dtype=np.float32)
    assert ndvi(zeros, zeros).tolist() == [0.0, 0.0, 0.0]
    result = normalized_difference(np.array([0.2, -0.2, 0.0]), np.array([-0.2, 0.2, 0.0]))
    assert np.isfinite(result).all()
    assert result.tolist() == [0.0, 0.0, 0.0]


def test_normalized_difference_writes_into_out():
    out = np.full((2, 2), 9.0, dtype=np.float32)
    result = normalized_difference(np.ones((2, 2)), np.zeros((2, 2)), out=out)
    assert result is out
    np.testing.assert_array_equal(out, 1.0)


def test_brightness_is_the_euclidean_norm_over_bands():
    stack = np.array([[3.0, 0.0], [4.0, 0.0]])  # bands along axis 0, two pixels
    result = brightness(stack)
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, [5.0, 0.0])


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_brightness_along_any_axis(axis):
    rng = np.random.default_rng(axis)
    stack = rng.random((3, 4, 5)).astype(np.float32)
    expected = np.sqrt((stack.astype(np.float64) ** 2).sum(axis=axis))
    np.testing.assert_allclose(brightness(stack, axis=axis), expected, rtol=1e-6)


def test_compiled_variants_give_the_same_floats_as_numpy():
    rng = np.random.default_rng(4)
    stack = rng.random((10, 3, 8, 9)).astype(np.float32)
    stack[:, 0, 0, 0] = 0.0  # zero denominators
    out = np.empty((3, 8, 9), dtype=np.float32)
    normalized_difference_into(stack[6], stack[2], out)
    np.testing.assert_array_equal(out, normalized_difference(stack[6], stack[2]))
    assert out[0, 0, 0] == 0.0
    brightness_into(stack, out)
    np.testing.assert_array_equal(out, brightness(stack, axis=0))
    with pytest.raises(ValueError):
        normalized_difference_into(stack[0].astype(np.float64), stack[1], out)
