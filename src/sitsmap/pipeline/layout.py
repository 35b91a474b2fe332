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

from dataclasses import dataclass
from pathlib import Path


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
        """The layout of one cross-validation fold."""
        return OutputLayout(self.root, self.crossval / fold)

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
        return self.root / "features" / tile / "PixelsValidity.tif"

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
        return self.samples_dir(seed) / f"candidates_{tile}.npz"

    def selection(self, seed: int) -> Path:
        """Pixels selected over all tiles."""
        return self.samples_dir(seed) / "selection.npz"

    def tile_samples(self, tile: str, seed: int) -> Path:
        """Extracted samples of one tile."""
        return self.samples_dir(seed) / f"samples_{tile}.parquet"

    def samples(self, seed: int) -> Path:
        """The samples table of a run (GeoParquet)."""
        return self.samples_dir(seed) / "samples.parquet"

    def class_statistics(self, seed: int) -> Path:
        """Per-class candidate and sample counts."""
        return self.samples_dir(seed) / "class_statistics.csv"

    def model_dir(self, seed: int) -> Path:
        """Model and training outputs of a run."""
        return self.runs / "model" / f"seed_{seed}"

    def model(self, seed: int) -> Path:
        """The trained model file."""
        return self.model_dir(seed) / "model.bin"

    def classification(self, tile: str, seed: int, kind: str = "Classif") -> Path:
        """A per-tile map: ``kind`` is Classif, Confidence or ProbabilityMap."""
        return self.runs / "classif" / tile / f"{kind}_{tile}_seed_{seed}.tif"

    @property
    def final(self) -> Path:
        """Final products directory."""
        return self.runs / "final"

    def final_map(self, seed: int, kind: str = "Classif") -> Path:
        """A mosaic: ``kind`` is Classif, Confidence or ProbabilityMap."""
        return self.final / f"{kind}_Seed_{seed}.tif"

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
