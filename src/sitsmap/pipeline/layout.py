"""Where every output of a run lives, in one place (the output tree).

::

    OUTPUT/
      config.yaml                     the resolved configuration of the run
      init/acquisitions.json          products per tile, tile grids, the shared temporal grid
      init/envelopes.gpkg             one non-overlapping envelope per tile
      features/<tile>/PixelsValidity.tif
      dataAppVal/ground_truth.gpkg    the cleaned ground truth (tiles' CRS)
      dataAppVal/seed_<n>.gpkg        polygons with their learning/validation side
      samples/seed_<n>/…              candidates, samples table, class_statistics.csv
      model/seed_<n>/…                model, training history and curves
      classif/<tile>/…                per-tile maps
      final/…                         mosaics, RESULTS.txt, results.json, figures
      logs/<task>.log                 one log per task
      .sitsmap/done/<task>.json       completion records (resume)
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from sitsmap.errors import StepError

MAX_NAME_LENGTH = 80
"""Longest name :func:`safe_name` returns (file names add prefixes and suffixes to it)."""

_HASH_LENGTH = 12
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_DOTS = re.compile(r"\.\.+")
_UNDERSCORES = re.compile(r"__+")
_SAFE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
_HASHED = re.compile(rf"-[0-9a-f]{{{_HASH_LENGTH}}}$")


def safe_name(value: str) -> str:
    """Turn a data-derived value into one safe path component.

    Fold names, group values, tile names or class names come from the user's
    data; used unchecked as folder names, ``../../x`` would write outside the
    output folder. The result holds only ``[A-Za-z0-9._-]``, never starts
    with a dot (so neither ``.``, ``..`` nor a hidden file) and has at most
    :data:`MAX_NAME_LENGTH` characters.

    A value that is already such a name is kept as it is. Any other value is
    made readable (accents dropped, other characters and runs of dots
    replaced by one ``_``, no ``.`` or ``_`` at either end) and
    gets ``-`` and 12 hex digits of its SHA-256 appended, so that two
    different values never give the same name; a safe value that happens to
    end like such a suffix gets one too, for the same reason.

    Parameters
    ----------
    value : str
        Any string (it is converted with :class:`str` if it is not one).

    Returns
    -------
    str
        The name, the same for the same value on every machine.
    """
    value = str(value)
    if _is_kept(value):
        return value
    ascii_text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    replaced = _DOTS.sub("_", _UNSAFE.sub("_", ascii_text))
    readable = _UNDERSCORES.sub("_", replaced).strip("._") or "_"
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_LENGTH]
    return f"{readable[: MAX_NAME_LENGTH - _HASH_LENGTH - 1]}-{digest}"


def _is_kept(value: str) -> bool:
    """Whether ``value`` is a safe name that no changed value can be turned into."""
    return (
        len(value) <= MAX_NAME_LENGTH
        and _SAFE.fullmatch(value) is not None
        and _HASHED.search(value) is None
    )


def check_inside(root: Path, path: Path) -> Path:
    """Return ``path`` if it lies under ``root``, else raise :class:`StepError`.

    Both are made absolute and normalised (``..`` removed) without following
    symbolic links, so a folder of the output tree that the user links to
    another disk stays allowed.

    Raises
    ------
    StepError
        If ``path`` is not ``root`` itself or below it.
    """
    base = os.path.normpath(os.path.abspath(root))
    target = os.path.normpath(os.path.abspath(path))
    if os.path.commonpath([base, target]) != base:
        raise StepError(f"this path lies outside output_path {base}", path)
    return path


@dataclass(frozen=True)
class OutputLayout:
    """Paths of a run's outputs under ``root``.

    ``run_root`` holds what depends on the learning polygons (split, samples,
    models, maps, validation): ``root`` itself for a plain run, a fold's own
    folder under ``root/crossval`` for spatial cross-validation, whose folds
    share init and preprocessing.
    """

    root: Path
    run_root: Path | None = None

    @property
    def runs(self) -> Path:
        """Root of the outputs that depend on the learning polygons."""
        return self.run_root or self.root

    def for_fold(self, fold: str) -> OutputLayout:
        """The layout of one cross-validation fold (its folder is ``safe_name(fold)``)."""
        return OutputLayout(self.root, self.inside(self.crossval / safe_name(fold)))

    def inside(self, path: Path) -> Path:
        """Return ``path``, checked to lie under ``root`` (see :func:`check_inside`)."""
        return check_inside(self.root, path)

    def _named(self, parent: Path, name: str, suffix: str = "") -> Path:
        """``parent / (safe_name(name) + suffix)``, checked to lie under ``root``."""
        return self.inside(parent / f"{safe_name(name)}{suffix}")

    @property
    def crossval(self) -> Path:
        """Cross-validation folds and their summary."""
        return self.root / "crossval"

    @property
    def config(self) -> Path:
        """The resolved configuration written by init."""
        return self.root / "config.yaml"

    @property
    def acquisitions(self) -> Path:
        """Products, grids and dates found by init."""
        return self.root / "init" / "acquisitions.json"

    @property
    def envelopes(self) -> Path:
        """Non-overlapping tile envelopes."""
        return self.root / "init" / "envelopes.gpkg"

    def pixels_validity(self, tile: str) -> Path:
        """Number of valid dates per pixel of a tile."""
        return self._named(self.root / "features", tile) / "PixelsValidity.tif"

    @property
    def ground_truth(self) -> Path:
        """Cleaned ground truth in the tiles' CRS, with polygon ids."""
        return self.root / "dataAppVal" / "ground_truth.gpkg"

    def split(self, seed: int) -> Path:
        """Polygons of a run with their learning/validation side."""
        return self.runs / "dataAppVal" / f"seed_{seed}.gpkg"

    def samples_dir(self, seed: int) -> Path:
        """Sampling outputs of a run."""
        return self.runs / "samples" / f"seed_{seed}"

    def candidates(self, tile: str, seed: int) -> Path:
        """Learning pixels of a tile that could become samples."""
        return self._named(self.samples_dir(seed), f"candidates_{tile}", ".npz")

    def selection(self, seed: int) -> Path:
        """Pixels selected over all tiles."""
        return self.samples_dir(seed) / "selection.npz"

    def tile_samples(self, tile: str, seed: int) -> Path:
        """Extracted samples of one tile."""
        return self._named(self.samples_dir(seed), f"samples_{tile}", ".parquet")

    def samples(self, seed: int) -> Path:
        """The samples table of a run (GeoParquet)."""
        return self.samples_dir(seed) / "samples.parquet"

    def class_statistics(self, seed: int) -> Path:
        """Per-class candidate and sample counts."""
        return self.samples_dir(seed) / "class_statistics.csv"

    def model_dir(self, seed: int, region: str | None = None) -> Path:
        """Model and training outputs of a run (of one region's model when given)."""
        folder = self.runs / "model" / f"seed_{seed}"
        return folder if region is None else self._named(folder, f"region_{region}")

    def model(self, seed: int, region: str | None = None) -> Path:
        """The trained model file (of one region when given)."""
        return self.model_dir(seed, region) / "model.bin"

    @property
    def regions(self) -> Path:
        """The eco-regions in the tiles' CRS, one (multi)polygon each."""
        return self.root / "init" / "regions.gpkg"

    def regions_raster(self, tile: str) -> Path:
        """Region number of every pixel of a tile (0: outside every region)."""
        return self._named(self.root / "features", tile) / "Regions.tif"

    @property
    def final_regions(self) -> Path:
        """The regions' mosaic in the output projection."""
        return self.root / "final" / "Regions.tif"

    def classification(self, tile: str, seed: int, kind: str = "Classif") -> Path:
        """A per-tile map: ``kind`` is Classif, Confidence or ProbabilityMap."""
        folder = self._named(self.runs / "classif", tile)
        return self._named(folder, f"{kind}_{tile}_seed_{seed}", ".tif")

    @property
    def final(self) -> Path:
        """Final products directory."""
        return self.runs / "final"

    def final_map(self, seed: int, kind: str = "Classif") -> Path:
        """A final map of run ``seed``.

        ``kind`` is Classif, Confidence or ProbabilityMap (the mosaics), Smoothed,
        SmoothedProbabilityMap, Regularised or Uncertainty_<measure> (post-processing).
        """
        return self.final / f"{kind}_Seed_{seed}.tif"

    def vector_map(self, seed: int, suffix: str = ".gpkg") -> Path:
        """The vector map of run ``seed`` (``.gpkg`` or ``.parquet``)."""
        return self.final / f"VectorMap_Seed_{seed}{suffix}"

    def suggested_samples(self, seed: int) -> Path:
        """Where ``sitsmap suggest-samples`` writes its points by default."""
        return self.final / f"suggested_samples_seed_{seed}.gpkg"

    @property
    def left_out(self) -> Path:
        """Polygons of the group a cross-validation fold leaves out."""
        return self.runs / "dataAppVal" / "left_out.gpkg"

    @property
    def fusion_map(self) -> Path:
        """Majority vote of the runs' maps."""
        return self.final / "Classifications_fusion.tif"

    @property
    def final_validity(self) -> Path:
        """Mosaic of PixelsValidity."""
        return self.final / "PixelsValidity.tif"

    def confusion_figure(self, seed: int) -> Path:
        """Confusion matrix heat map of a run."""
        return self.final / f"confusion_matrix_seed_{seed}.png"

    @property
    def results_txt(self) -> Path:
        """iota2-style accuracy report."""
        return self.final / "RESULTS.txt"

    @property
    def results_json(self) -> Path:
        """Accuracy figures for programs."""
        return self.final / "results.json"

    @property
    def logs(self) -> Path:
        """One log file per task."""
        return self.root / "logs"

    @property
    def done(self) -> Path:
        """Completion records of tasks."""
        return self.root / ".sitsmap" / "done"
