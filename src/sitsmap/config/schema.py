"""The configuration, as frozen typed objects with documented defaults.

Section and key names are iota2's, so that iota2 users feel at home; the
``scheduling`` section is sitsmap's own. Each step receives the section it
needs, never the raw mapping.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sitsmap.sensors import SENTINEL2_THEIA

STEP_NAMES = (
    "init",
    "preprocessing",
    "split",
    "sampling",
    "learning",
    "classification",
    "mosaic",
    "validation",
)
"""The chain's steps, in order (iota2's step groups)."""

StepName = Literal[
    "init",
    "preprocessing",
    "split",
    "sampling",
    "learning",
    "classification",
    "mosaic",
    "validation",
]


_TILE_NAME = re.compile(r"[A-Za-z0-9_-]+")
"""What a tile name may hold: it names folders and files of the output tree."""


class Section(BaseModel):
    """Base of every section: frozen, unknown keys rejected, aliases accepted."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def _parse_date(value: Any) -> Any:
    """Accept iota2's ``YYYYMMDD`` strings (and ints) as well as ISO dates."""
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, str) and len(value) == 8 and value.isdigit():
        return dt.datetime.strptime(value, "%Y%m%d").date()
    return value


class Chain(Section):
    """``chain``: where things are and what the chain produces."""

    output_path: Path = Field(description="Directory of every output of the run.")
    remove_output_path: bool = Field(
        False, description="Delete output_path before running (a fresh start, no resume)."
    )
    list_tile: tuple[str, ...] = Field(
        description="Tiles to process: a list, or iota2's space-separated string."
    )
    s2_path: Path = Field(description="Directory holding one folder of L2A products per tile.")
    ground_truth: Path = Field(description="Ground-truth polygons (any OGR format).")
    data_field: str = Field("code", description="Integer class field of the ground truth.")
    spatial_resolution: float = Field(10.0, gt=0, description="Output pixel size (m).")
    proj: str = Field("EPSG:2154", description="CRS of the final mosaic.")
    color_table: Path | None = Field(
        None, description="`code R G B` colour file; the OSO colours when omitted."
    )
    nomenclature_path: Path | None = Field(
        None, description="`name:code` nomenclature; the 23-class OSO one when omitted."
    )
    first_step: StepName | None = Field(None, description="First step to run.")
    last_step: StepName | None = Field(None, description="Last step to run.")
    split_ground_truth: bool = Field(
        True, description="Split polygons into learning/validation; if false, use all for both."
    )
    ratio: float = Field(
        0.5, gt=0, lt=1, description="Fraction of each class's polygons used for learning."
    )
    region_path: Path | None = Field(
        None,
        description="Eco-climatic regions, one model each: not supported yet, an error when set.",
    )
    region_field: str = Field("region", description="Region field of region_path (unused).")
    merge_final_classifications: bool = Field(
        False, description="Fuse the runs' maps by majority voting (needs runs > 1)."
    )
    merge_final_classifications_method: Literal["majorityvoting"] = Field(
        "majorityvoting", description="Fusion rule."
    )
    merge_final_classifications_undecidedlabel: int = Field(
        255, ge=0, le=65535, description="Label of fused pixels whose vote is a tie."
    )
    merge_final_classifications_ratio: float = Field(
        0.1,
        gt=0,
        lt=1,
        description="Fraction of each class's polygons held back from every run to "
        "validate the fusion.",
    )

    @field_validator("list_tile", mode="before")
    @classmethod
    def _split_tiles(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.split()
        return value

    @field_validator("list_tile")
    @classmethod
    def _check_tiles(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("list at least one tile")
        # T31TCJ and 31tcj name one tile (and one folder on a case-insensitive disk)
        if len({tile.upper().removeprefix("T") for tile in value}) != len(value):
            raise ValueError("a tile is listed twice")
        bad = [tile for tile in value if not _TILE_NAME.fullmatch(tile)]
        if bad:
            raise ValueError(
                f"tile name(s) {bad} may hold only letters, digits, '_' and '-' (like T31TCJ)"
            )
        return value

    @field_validator("region_path")
    @classmethod
    def _no_regions(cls, value: Path | None) -> Path | None:
        if value is not None:
            raise ValueError(
                "one model per eco-region is not supported yet; remove the key "
                "(the whole area gets one model)"
            )
        return value

    @field_validator("spatial_resolution", mode="before")
    @classmethod
    def _one_resolution(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):  # iota2 accepts [x, y]; we need square pixels
            if len(set(value)) != 1:
                raise ValueError("only square pixels are supported: give one value")
            return value[0]
        return value

    @model_validator(mode="after")
    def _steps_in_order(self) -> Chain:
        first, last = self.first_step, self.last_step
        if first and last and STEP_NAMES.index(first) > STEP_NAMES.index(last):
            raise ValueError(f"first_step {first!r} comes after last_step {last!r}")
        return self


class Sentinel2(Section):
    """``sentinel_2``: the temporal grid and the bands kept."""

    temporal_resolution: int = Field(
        10, gt=0, description="Days between two dates of the gap-filled grid."
    )
    start_date: dt.date | None = Field(
        None, description="First date of the grid (YYYYMMDD); the common period when omitted."
    )
    end_date: dt.date | None = Field(None, description="Last possible date of the grid (YYYYMMDD).")
    keep_bands: tuple[str, ...] = Field(
        SENTINEL2_THEIA.band_names, description="Bands used as features (iota2 order kept)."
    )

    _dates = field_validator("start_date", "end_date", mode="before")(
        classmethod(lambda cls, v: _parse_date(v))
    )

    @field_validator("keep_bands", mode="before")
    @classmethod
    def _split_bands(cls, value: Any) -> Any:
        return value.replace(",", " ").split() if isinstance(value, str) else value

    @field_validator("keep_bands")
    @classmethod
    def _known_bands(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        known = {b.upper(): b for b in SENTINEL2_THEIA.band_names}
        unknown = [b for b in value if b.upper() not in known]
        if unknown:
            raise ValueError(f"unknown band(s) {unknown}; known: {list(known.values())}")
        wanted = {b.upper() for b in value}
        return tuple(b for b in SENTINEL2_THEIA.band_names if b.upper() in wanted)

    @model_validator(mode="after")
    def _dates_in_order(self) -> Sentinel2:
        if self.start_date and self.end_date and self.start_date > self.end_date:
            raise ValueError("start_date is after end_date")
        return self


class SampleSelection(Section):
    """``arg_train.sample_selection``: which ground-truth pixels become samples.

    Keys follow OTB's SampleSelection (``strategy.constant.nb``, …).
    """

    sampler: Literal["periodic", "random"] = Field(
        "random", description="periodic: every k-th pixel of a class; random: uniform draw."
    )
    strategy: Literal["constant", "percent", "all", "smallest", "byclass", "total"] = Field(
        "all", description="How many samples per class."
    )
    constant_nb: int = Field(
        1000,
        alias="strategy.constant.nb",
        gt=0,
        description="constant: at most this many samples per class (over all tiles).",
    )
    percent_p: float = Field(
        0.5,
        alias="strategy.percent.p",
        gt=0,
        le=1,
        description="percent: this fraction of each class's pixels.",
    )
    total_v: int = Field(
        1000,
        alias="strategy.total.v",
        gt=0,
        description="total: this many samples in all, shared in proportion to class sizes.",
    )
    byclass_in: Path | None = Field(
        None,
        alias="strategy.byclass.in",
        description="byclass: CSV of `code,count` lines giving each class's count.",
    )

    @model_validator(mode="after")
    def _byclass_needs_file(self) -> SampleSelection:
        if self.strategy == "byclass" and self.byclass_in is None:
            raise ValueError("strategy byclass needs strategy.byclass.in (a code,count CSV)")
        return self


class HyperparametersSolver(Section):
    """A grid of optimiser settings; one model is trained per combination, the best kept."""

    learning_rate: tuple[float, ...] = Field((1e-5,), description="Adam learning rates.")
    batch_size: tuple[int, ...] = Field((4096,), description="Mini-batch sizes.")

    @field_validator("learning_rate", "batch_size", mode="before")
    @classmethod
    def _scalar_to_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, int | float | str) else value

    @field_validator("learning_rate", "batch_size")
    @classmethod
    def _positive(cls, value: tuple) -> tuple:
        if not value or any(v <= 0 for v in value):
            raise ValueError("give one or more positive values")
        return value


class DeepLearningParameters(Section):
    """``arg_train.deep_learning_parameters``: a PyTorch network instead of a forest."""

    dl_name: Literal["MLPClassifier", "TempCNN", "LTAE"] = Field(
        "MLPClassifier", description="Network architecture."
    )
    epochs: int = Field(100, gt=0, description="Training epochs.")
    model_selection_criterion: Literal["fscore", "oa", "kappa", "loss"] = Field(
        "fscore", description="Metric on the monitoring set that picks the kept epoch."
    )
    hyperparameters_solver: HyperparametersSolver = Field(
        default_factory=HyperparametersSolver, description="Learning-rate × batch-size grid."
    )
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes.")
    monitoring_ratio: float = Field(
        0.2,
        gt=0,
        lt=1,
        description="Fraction of learning polygons held back to monitor training (80/20).",
    )
    weighted_labels: bool = Field(False, description="Weight the loss by inverse class frequency.")
    enable_early_stop: bool = Field(False, description="Stop when the criterion stops improving.")
    early_stop_patience: int = Field(10, gt=0, description="Epochs without improvement allowed.")
    dl_parameters: dict[str, Any] = Field(
        default_factory=dict, description="Extra keyword arguments of the network's constructor."
    )


class ArgTrain(Section):
    """``arg_train``: runs, samples and the classifier."""

    runs: int = Field(1, gt=0, description="Independent runs (seeds random_seed, +1, …).")
    random_seed: int = Field(0, ge=0, description="Seed of the first run.")
    sample_selection: SampleSelection = Field(default_factory=SampleSelection)
    classifier: Literal["rf", "lightgbm"] = Field(
        "rf", description="Classical classifier, used when deep_learning_parameters is absent."
    )
    otb_classifier_options: dict[str, float | int] = Field(
        default_factory=lambda: {
            "classifier.rf.nbtrees": 100,
            "classifier.rf.max": 25,
            "classifier.rf.min": 5,
        },
        description="OTB-style random-forest options: nbtrees, max (depth), "
        "min (samples needed to split a node).",
    )
    lightgbm_parameters: dict[str, Any] = Field(
        default_factory=dict, description="Extra LightGBM parameters (num_leaves, …)."
    )
    deep_learning_parameters: DeepLearningParameters | None = Field(
        None, description="Train this PyTorch network instead of the classical classifier."
    )

    @field_validator("otb_classifier_options")
    @classmethod
    def _known_rf_options(cls, value: dict) -> dict:
        known = {"classifier.rf.nbtrees", "classifier.rf.max", "classifier.rf.min"}
        unknown = set(value) - known
        if unknown:
            raise ValueError(f"unknown option(s) {sorted(unknown)}; known: {sorted(known)}")
        return value


class ArgClassification(Section):
    """``arg_classification``: what classification writes besides the class map."""

    enable_probability_map: bool = Field(False, description="Write one probability band per class.")


class PythonDataManaging(Section):
    """``python_data_managing``: how tiles are streamed."""

    number_of_chunks: int | None = Field(
        None,
        gt=0,
        description="Split each tile into this many row chunks; memory-bounded when omitted.",
    )
    max_chunk_megabytes: int = Field(
        1024,
        gt=0,
        description="Upper bound of one chunk's feature array when chunking is automatic.",
    )


class TaskRetryLimits(Section):
    """``task_retry_limits``: retries and resources of the workers."""

    allowed_retry: int = Field(0, ge=0, description="Times a failed task is retried.")
    maximum_ram: float = Field(16.0, gt=0, description="Memory for all workers together (GB).")
    maximum_cpu: int = Field(2, gt=0, description="Cores for all workers together.")


class Scheduling(Section):
    """``scheduling`` (sitsmap's own): how the task graph is executed."""

    scheduler: str = Field(
        "processes",
        description="synchronous | threads | processes | tcp://host:port of a Dask scheduler.",
    )
    workers: int | None = Field(
        None, gt=0, description="Worker processes or threads; maximum_cpu when omitted."
    )

    @field_validator("scheduler")
    @classmethod
    def _known_scheduler(cls, value: str) -> str:
        if value in {"synchronous", "threads", "processes"} or _SCHEDULER_ADDRESS.match(value):
            return value
        raise ValueError("expected synchronous, threads, processes or a tcp://host:port address")


_SCHEDULER_ADDRESS = re.compile(
    r"^((tcp|tls|ucx|ws|wss)://(\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):\d{1,5}|inproc://\S+)$"
)
"""A Dask scheduler's address: protocol, host (or [IPv6]) and port; or an in-process one."""


class Config(Section):
    """The whole configuration."""

    chain: Chain
    sentinel_2: Sentinel2 = Field(default_factory=Sentinel2)
    arg_train: ArgTrain = Field(default_factory=ArgTrain)
    arg_classification: ArgClassification = Field(default_factory=ArgClassification)
    python_data_managing: PythonDataManaging = Field(default_factory=PythonDataManaging)
    task_retry_limits: TaskRetryLimits = Field(default_factory=TaskRetryLimits)
    scheduling: Scheduling = Field(default_factory=Scheduling)

    @model_validator(mode="after")
    def _fusion_needs_runs(self) -> Config:
        if self.chain.merge_final_classifications and self.arg_train.runs < 2:
            raise ValueError(
                "chain.merge_final_classifications is true but arg_train.runs is "
                f"{self.arg_train.runs}: the fusion needs 2 runs or more; "
                "raise runs or set merge_final_classifications to false"
            )
        return self

    @property
    def seeds(self) -> list[int]:
        """One seed per run: random_seed, random_seed + 1, …."""
        return [self.arg_train.random_seed + run for run in range(self.arg_train.runs)]
