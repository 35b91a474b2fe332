"""A sensor the user describes: one multi-band raster per date, preprocessed elsewhere.

For anything sitsmap does not read itself (Sentinel-1 backscatter, an index
computed elsewhere, another satellite): a folder of rasters, one per date,
the date in the file name, the same bands in every file, an optional mask
band (non-zero = invalid). Rasters in any CRS and at any resolution are warped
onto the tile's grid (bilinear; nearest for the mask), gap-filled onto the
sensor's own temporal grid like every sensor; no spectral index is made.

Values are held as int16 ``value x scale`` between reading and gap-filling (as
reflectances are held x 10000), so ``scale`` must keep ``|value| x scale``
under 32767 while keeping the precision wanted: 100 for backscatter in dB.
"""

from __future__ import annotations

from collections.abc import Sequence

from sitsmap.sensors.base import Band, MaskRule, SensorDescription

__all__ = ["MASK_KEY", "user_sensor"]

MASK_KEY = "MASK"
"""Key of the mask band in a user product's files."""


def user_sensor(
    name: str,
    bands: Sequence[str],
    has_mask: bool,
    scale: float,
    nodata: float,
    resolution: int = 10,
) -> SensorDescription:
    """Describe a user sensor.

    Parameters
    ----------
    name : str
        Prefix of its feature names (``sentinel1``: ``sentinel1_vv_20180105``).
    bands : sequence of str
        Names of its bands, in file order (the mask band excluded).
    has_mask : bool
        Whether a band of each file flags invalid pixels (non-zero).
    scale : float
        Values are held as int16 ``value x scale``.
    nodata : float
        Value of no data in the rasters (NaN always is).
    resolution : int
        Nominal resolution (m), for descriptions only: rasters are warped.
    """
    mask = MaskRule("flags", (MASK_KEY,), outside=1) if has_mask else MaskRule("none")
    return SensorDescription(
        name=name,
        bands=tuple(Band(band.upper(), resolution) for band in bands),
        mask=mask,
        nodata=nodata,
        warped=True,
        scale=scale,
        brightness=False,
    )
