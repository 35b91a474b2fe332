"""The configuration, as frozen typed objects with documented defaults.

Section and key names are iota2's, so that iota2 users feel at home; the
``scheduling`` section is sitsmap's own. Each step receives the section it
needs, never the raw mapping.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from sitsmap.sensors import LANDSAT8, SENTINEL2_THEIA
from sitsmap.sensors.landsat import QA_INVALID_BITS
from sitsmap.sensors.sentinel2 import SCL_INVALID_CLASSES, STAC_ASSETS

STEP_NAMES = (
    "init",
    "preprocessing",
    "split",
    "sampling",
    "learning",
    "classification",
    "mosaic",
    "postprocessing",
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
    "postprocessing",
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


def _kept_bands(value: tuple[str, ...], known: tuple[str, ...]) -> tuple[str, ...]:
    """The known bands of ``value``, any case, in the sensor's own order."""
    by_upper = {band.upper(): band for band in known}
    unknown = [band for band in value if band.upper() not in by_upper]
    if unknown:
        raise ValueError(f"unknown band(s) {unknown}; known: {list(known)}")
    wanted = {band.upper() for band in value}
    return tuple(band for band in known if band.upper() in wanted)


class Chain(Section):
    """``chain``: where things are and what the chain produces."""

    output_path: Path = Field(description="Directory of every output of the run.")
    remove_output_path: bool = Field(
        False, description="Delete output_path before running (a fresh start, no resume)."
    )
    list_tile: tuple[str, ...] = Field(
        description="Tiles to process: a list, or iota2's space-separated string."
    )
    s2_path: Path | None = Field(
        None,
        description="Theia/MAJA Sentinel-2 L2A: one folder per tile holding the product "
        "folders or the zips Theia delivers (read in place, never unzipped).",
    )
    s2_s2c_path: Path | None = Field(
        None,
        description="Sen2Cor Sentinel-2 L2A: .SAFE folders or Copernicus Data Space .zip "
        "files, directly in this folder or in one folder per tile.",
    )
    l8_path: Path | None = Field(
        None,
        description="Landsat 8/9 Collection 2 Level-2 (L2SP) folders or tar files, directly "
        "in this folder or in one folder per tile; warped onto the tiles' grids.",
    )
    user_feat_path: Path | None = Field(
        None,
        description="One folder per tile of static rasters (DEM, slope, soil map) added to "
        "every pixel's features; see the userFeat section.",
    )
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
        description="Eco-climatic regions (polygons, any OGR format and CRS): one model per "
        "region and run.",
    )
    region_field: str = Field("region", description="Region id field of region_path.")
    region_border_width: float = Field(
        0.0,
        ge=0,
        description="Metres across each region border within which the neighbouring "
        "regions' models are blended by distance (0: iota2's hard border).",
    )
    region_fallback: Literal["global", "nearest", "error"] = Field(
        "global",
        description="Model of a region with nothing to learn: the global model, the nearest "
        "region's, or an error.",
    )
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


class TemporalGrid(Section):
    """What every sensor section shares: its own gap-filling grid and date range."""

    temporal_resolution: int = Field(
        10, gt=0, description="Days between two dates of the gap-filled grid."
    )
    start_date: dt.date | None = Field(
        None, description="First date of the grid (YYYYMMDD); the common period when omitted."
    )
    end_date: dt.date | None = Field(None, description="Last possible date of the grid (YYYYMMDD).")

    _dates = field_validator("start_date", "end_date", mode="before")(
        classmethod(lambda cls, v: _parse_date(v))
    )

    @model_validator(mode="after")
    def _dates_in_order(self) -> TemporalGrid:
        if self.start_date and self.end_date and self.start_date > self.end_date:
            raise ValueError("start_date is after end_date")
        return self


def _split_band_list(value: Any) -> Any:
    """Accept ``"B2 B3"`` and ``"B2,B3"`` as well as lists."""
    return value.replace(",", " ").split() if isinstance(value, str) else value


class Sentinel2(TemporalGrid):
    """``sentinel_2``: the temporal grid and the bands kept."""

    keep_bands: tuple[str, ...] = Field(
        SENTINEL2_THEIA.band_names, description="Bands used as features (iota2 order kept)."
    )
    scl_invalid_classes: tuple[int, ...] = Field(
        SCL_INVALID_CLASSES,
        description="Sen2Cor scene classes read as invalid (SAFE and STAC products): no "
        "data, saturated, cloud shadow, cloud medium and high probability, thin cirrus.",
    )

    _split_bands = field_validator("keep_bands", mode="before")(
        classmethod(lambda cls, v: _split_band_list(v))
    )

    @field_validator("keep_bands")
    @classmethod
    def _known_bands(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _kept_bands(value, SENTINEL2_THEIA.band_names)


class Landsat8(TemporalGrid):
    """``landsat8``: the temporal grid, bands and quality bits of Landsat 8/9 (chain.l8_path)."""

    temporal_resolution: int = Field(
        16, gt=0, description="Days between two dates of Landsat's own gap-filled grid."
    )
    keep_bands: tuple[str, ...] = Field(
        LANDSAT8.band_names, description="OLI bands used as features (B2 blue to B7 SWIR 2)."
    )
    qa_invalid_bits: tuple[int, ...] = Field(
        QA_INVALID_BITS,
        description="QA_PIXEL bits read as invalid: fill, dilated cloud, cirrus, cloud, "
        "cloud shadow, snow.",
    )

    _split_bands = field_validator("keep_bands", mode="before")(
        classmethod(lambda cls, v: _split_band_list(v))
    )

    @field_validator("keep_bands")
    @classmethod
    def _known_bands(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _kept_bands(value, LANDSAT8.band_names)

    @field_validator("qa_invalid_bits")
    @classmethod
    def _bits(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 0 <= bit <= 15 for bit in value):
            raise ValueError("QA_PIXEL bits are 0 to 15")
        return value


class Stac(Section):
    """``stac``: Sentinel-2 L2A read straight from a STAC catalog of Cloud-Optimized GeoTIFFs."""

    catalog: str | None = Field(
        None,
        description="A local catalog or collection JSON, or a STAC API URL (searched with "
        "pystac-client).",
    )
    collection: str = Field("sentinel-2-l2a", description="Collection of the items.")
    assets: dict[str, str] = Field(
        default_factory=lambda: dict(STAC_ASSETS),
        description="Asset key → band (B2 … B12) or SCL; Earth Search's keys by default.",
    )

    @field_validator("assets")
    @classmethod
    def _known_bands(cls, value: dict[str, str]) -> dict[str, str]:
        known = {b.upper() for b in SENTINEL2_THEIA.band_names} | {"SCL"}
        unknown = sorted(v for v in value.values() if v.upper() not in known)
        if unknown:
            raise ValueError(f"unknown band(s) {unknown}; known: B2 … B12 and SCL")
        return {key: band.upper() for key, band in value.items()}


_FEATURE_PREFIX = re.compile(r"[a-z][a-z0-9]*")


class UserSensor(TemporalGrid):
    """``user_sensor``: one multi-band raster per date that the user made elsewhere.

    Sentinel-1 backscatter, an index from another chain, another satellite: the
    rasters are warped onto the tiles' grids and gap-filled like any sensor.
    """

    path: Path | None = Field(
        None, description="Folder of the rasters (directly, or one folder per tile)."
    )
    name: str = Field(
        "usersensor", description="Prefix of its feature names (lower-case letters, digits)."
    )
    date_pattern: str = Field(
        r"(?P<date>\d{8})",
        description="Regular expression finding the date (YYYYMMDD) in a file name.",
    )
    bands: tuple[str, ...] = Field((), description="Band names, in file order (mask excluded).")
    mask_band: int | None = Field(
        None, ge=1, description="1-based band flagging invalid pixels (non-zero)."
    )
    scale: float = Field(
        100.0,
        gt=0,
        description="Values are held as int16 value x scale: keep |value| x scale < 32767.",
    )
    nodata: float = Field(-10000.0, description="No-data value of the rasters (NaN always is).")

    @field_validator("name")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not _FEATURE_PREFIX.fullmatch(value) or value in {"sentinel2", "landsat8", "userfeat"}:
            raise ValueError(
                "give lower-case letters and digits, not sentinel2, landsat8 or userfeat"
            )
        return value

    @field_validator("date_pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression ({exc})") from None
        return value

    @field_validator("bands")
    @classmethod
    def _band_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [band for band in value if not re.fullmatch(r"[A-Za-z0-9]+", band)]
        if bad:
            raise ValueError(
                f"band names {bad} may hold only letters and digits (they name features)"
            )
        return value

    @model_validator(mode="after")
    def _bands_given(self) -> UserSensor:
        if self.path is not None and not self.bands:
            raise ValueError("user_sensor.path is set: name its bands in user_sensor.bands")
        if len({b.upper() for b in self.bands}) != len(self.bands):
            raise ValueError("a band is named twice")
        return self

    @property
    def keep_bands(self) -> tuple[str, ...]:
        """Every band, upper-cased as its features' names are made from."""
        return tuple(band.upper() for band in self.bands)


class UserFeat(Section):
    """``userFeat`` (iota2's name): which static rasters of chain.user_feat_path to use."""

    arbo: str = Field("/*", description="Sub-path pattern under each tile's folder.")
    patterns: tuple[str, ...] = Field(
        (), description="Names the rasters contain (iota2's comma-separated string accepted)."
    )

    @field_validator("patterns", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [pattern.strip() for pattern in value.split(",") if pattern.strip()]
        return value


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
    """A grid of optimiser settings; one model is trained per combination, the best kept.

    Unset (null), a setting is chosen from the number ``n`` of learning samples
    (those left after the monitoring split), a rule that works from 1 000 to
    2 000 000 samples: see :func:`sitsmap.learning.deep.trainer.auto_settings`.
    """

    learning_rate: tuple[float, ...] | None = Field(
        None,
        description="Peak learning rates. Unset: 1e-3 × sqrt(batch / 256), between 1e-3 and "
        "3e-3, with AdamW, weight decay, a one-cycle schedule and early stopping; given: "
        "Adam at this constant rate unless weight_decay, lr_schedule or enable_early_stop say "
        "otherwise.",
    )
    batch_size: tuple[int, ...] | None = Field(
        None,
        description="Mini-batch sizes. Unset: the power of two nearest n / 50, clipped to "
        "[32, 4096] (about 50 steps per epoch).",
    )

    @field_validator("learning_rate", "batch_size", mode="before")
    @classmethod
    def _scalar_to_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, int | float | str) else value

    @field_validator("learning_rate", "batch_size")
    @classmethod
    def _positive(cls, value: tuple | None) -> tuple | None:
        if value is not None and (not value or any(v <= 0 for v in value)):
            raise ValueError("give one or more positive values, or leave unset (automatic)")
        return value


class DataAugmentation(Section):
    """``deep_learning_parameters.augmentation``: random changes to the training mini-batches.

    Applied to the training batches only (never to monitoring or prediction). A
    setting left unset is 0 (off): with an automatic learning rate too, as measured
    with ``bench/learners.py``.
    """

    jitter: float | None = Field(
        None,
        ge=0,
        description="Standard deviation of Gaussian noise added to the channel values of the "
        "valid dates, in units of each feature's standard deviation (e.g. 0.03). Unset: 0.",
    )
    date_dropout: float | None = Field(
        None,
        ge=0,
        lt=1,
        description="Probability that a date is dropped (at least one kept per pixel): "
        "gap-filled features get the linear interpolation between the nearest kept dates, raw "
        "dates lose the observation (e.g. 0.2). Unset: 0.",
    )
    time_shift: float | None = Field(
        None,
        ge=0,
        description="Largest time shift in days: each pixel's series is shifted by whole days "
        "drawn in [-time_shift, time_shift] (raw dates: their days; gap-filled: whole grid "
        "dates, only when at least one grid step) (e.g. 10). Unset: 0.",
    )


class DeepLearningParameters(Section):
    """``arg_train.deep_learning_parameters``: a PyTorch network instead of a forest."""

    dl_name: Literal["MLPClassifier", "TempCNN", "LTAE", "Transformer"] = Field(
        "MLPClassifier", description="Network architecture."
    )
    epochs: int | None = Field(
        None,
        gt=0,
        description="Training epochs per grid combination. Unset: enough for about 10 000 "
        "optimiser steps, ceil(10000 / ceil(n / batch)), clipped to [30, 300].",
    )
    model_selection_criterion: Literal["fscore", "oa", "kappa", "loss", "rmse", "r2"] = Field(
        "fscore",
        description="Metric on the monitoring set that picks the kept epoch: fscore, oa, kappa "
        "or loss in classification; rmse, r2 or loss in regression (where the default, fscore, "
        "means rmse).",
    )
    regression_loss: Literal["mse", "huber"] = Field(
        "mse",
        description="Regression only: the training loss on the standardised target, mean "
        "squared error or Huber (quadratic within huber_delta, linear beyond: robust to "
        "outlying reference values).",
    )
    huber_delta: float = Field(
        1.0,
        gt=0,
        description="Regression with the huber loss: where the loss turns linear, in standard "
        "deviations of the target.",
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
    enable_early_stop: bool | None = Field(
        None,
        description="Stop when the criterion stops improving. Unset: on when the learning rate "
        "is automatic, off when it is given.",
    )
    early_stop_patience: int = Field(10, gt=0, description="Epochs without improvement allowed.")
    weight_decay: float | None = Field(
        None,
        ge=0,
        description="Decoupled weight decay (AdamW; 0: Adam). Unset: 1e-4 when the learning "
        "rate is automatic, 0 when it is given.",
    )
    lr_schedule: Literal["constant", "onecycle", "cosine"] | None = Field(
        None,
        description="Learning-rate schedule, stepped every batch: constant, onecycle (warm-up "
        "then cosine annealing, momentum cycled) or cosine (5 % linear warm-up, then cosine "
        "decay to 0). Unset: onecycle when the learning rate is automatic, constant when it is "
        "given.",
    )
    impute: Literal["refuse", "mean", "zero"] = Field(
        "refuse",
        description="Non-finite features (NaN, ±inf): refuse them (an error naming the columns), "
        "or replace them by the column's mean over the learning samples, or by 0; prediction "
        "replaces them the same way.",
    )
    dl_parameters: dict[str, Any] = Field(
        default_factory=dict, description="Extra keyword arguments of the network's constructor."
    )
    augmentation: DataAugmentation = Field(
        default_factory=DataAugmentation,
        description="Jitter, date dropout and time shifts of the training mini-batches.",
    )


class ModelSelection(Section):
    """``arg_train.model_selection``: several learners scored by grouped k-fold, the best kept.

    Each candidate is arg_train's learner settings updated with its own (mappings
    merged key by key; see :mod:`sitsmap.learning.selection`).
    """

    candidates: tuple[dict[str, Any], ...] = Field(
        (),
        description="Learners to choose from: each a mapping of arg_train learner keys "
        "(classifier, otb_classifier_options, lightgbm_parameters, svm_parameters, "
        "svm_max_samples, sample_augmentation, deep_learning_parameters), an optional name, "
        "and an optional grid mapping dotted keys (lightgbm_parameters.num_leaves) to lists "
        "of values: one candidate per combination. Empty: no selection, arg_train's learner.",
    )
    folds: int = Field(
        5,
        ge=2,
        description="Folds of the grouped cross-validation over the learning polygons (iota2's "
        "cross_validation_folds); fewer when a class has fewer polygons, at least 2.",
    )
    criterion: Literal["fscore", "oa", "kappa", "rmse", "r2"] = Field(
        "fscore",
        description="Score that picks the candidate, averaged over the folds: fscore (mean "
        "F-score over the classes, robust to imbalanced classes), oa or kappa; in regression "
        "rmse or r2 (where the default, fscore, means rmse); ties go to the first listed.",
    )


class ArgTrain(Section):
    """``arg_train``: runs, samples and the classifier."""

    task: Literal["classification", "regression"] = Field(
        "classification",
        description="classification: chain.data_field holds integer class codes; regression: "
        "a numeric value to map (tree cover, biomass, yield…), learnt by the random forest, "
        "LightGBM or a network regressor and mapped as float32.",
    )
    regression_bins: int = Field(
        10,
        ge=2,
        le=100,
        description="Regression only: the target's quantile bins over the polygons. The split "
        "is stratified on them, the sample selection strategies apply per bin as they do per "
        "class, and the validation reports errors per bin.",
    )
    quantile_interval: tuple[float, float] | None = Field(
        None,
        description="Regression with lightgbm only: also fit LightGBM quantile models at these "
        "two levels (e.g. [0.05, 0.95]); the uncertainty map is the width of that interval. "
        "Unset: a random forest's uncertainty map is the spread (standard deviation) of its "
        "trees' predictions, and LightGBM and networks write none.",
    )
    runs: int = Field(1, gt=0, description="Independent runs (seeds random_seed, +1, …).")
    random_seed: int = Field(0, ge=0, description="Seed of the first run.")
    sample_selection: SampleSelection = Field(default_factory=SampleSelection)
    classifier: Literal["rf", "lightgbm", "svm"] = Field(
        "rf",
        description="Classical classifier, used when deep_learning_parameters is absent: "
        "rf (random forest), lightgbm, svm (support vector machine on standardised features).",
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
        default_factory=dict,
        description="Extra LightGBM parameters (num_leaves, …). Unless given, min_child_samples "
        "is the smallest class's sample count / 5, between 2 and 20 (LightGBM's default, 20, "
        "forbids every split on a few samples per class).",
    )
    svm_parameters: dict[str, Any] = Field(
        default_factory=lambda: {"C": 1.0, "gamma": "scale", "kernel": "rbf"},
        description="scikit-learn SVC parameters of the svm: C, gamma, kernel, degree, coef0, "
        "class_weight, tol, cache_size (those not given keep SVC's defaults).",
    )
    svm_max_samples: int = Field(
        20_000,
        ge=2,
        description="The svm learns from at most this many samples (a stratified draw with the "
        "run's seed): its fitting time grows with the square of the sample count.",
    )
    sample_augmentation: Literal["none", "smote"] = Field(
        "none",
        description="smote: before fitting rf, lightgbm or svm, add synthetic samples (SMOTE, "
        "seeded) to every class until it has as many as the largest; a class with a single "
        "sample is left as is.",
    )
    deep_learning_parameters: DeepLearningParameters | None = Field(
        None, description="Train this PyTorch network instead of the classical classifier."
    )
    model_selection: ModelSelection = Field(
        default_factory=ModelSelection,
        description="Learners scored by grouped cross-validation over the polygons; the best "
        "is trained on every sample.",
    )

    @field_validator("model_selection")
    @classmethod
    def _valid_candidates(cls, value: ModelSelection, info: ValidationInfo) -> ModelSelection:
        # the other keys are validated first (declared above): each candidate is the
        # validated learner settings updated with its own, and must validate in turn
        if value.candidates:
            from sitsmap.learning.selection import LEARNER_KEYS, expand_candidates

            if set(LEARNER_KEYS) <= set(info.data):  # else a learner key's error is shown
                expand_candidates(info.data, value.candidates)
        return value

    @field_validator("quantile_interval")
    @classmethod
    def _ordered_levels(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not 0 < value[0] < value[1] < 1:
            raise ValueError(f"must be two levels with 0 < low < high < 1, got {list(value)}")
        return value

    @field_validator("otb_classifier_options")
    @classmethod
    def _known_rf_options(cls, value: dict) -> dict:
        known = {"classifier.rf.nbtrees", "classifier.rf.max", "classifier.rf.min"}
        unknown = set(value) - known
        if unknown:
            raise ValueError(f"unknown option(s) {sorted(unknown)}; known: {sorted(known)}")
        return value

    @field_validator("svm_parameters")
    @classmethod
    def _known_svm_options(cls, value: dict) -> dict:
        # the chain sets probability calibration and the seed itself
        known = {"C", "kernel", "gamma", "degree", "coef0", "class_weight", "tol", "cache_size"}
        unknown = set(value) - known
        if unknown:
            raise ValueError(f"unknown option(s) {sorted(unknown)}; known: {sorted(known)}")
        return value


class ArgClassification(Section):
    """``arg_classification``: what classification writes besides the class map."""

    enable_probability_map: bool = Field(False, description="Write one probability band per class.")
    compiled_inference: bool = Field(
        True,
        description="Random forests and LightGBM predict with their compiled trees (same "
        "maps, several times faster); false: with their libraries.",
    )


def _odd_window(value: int) -> int:
    """A window centred on its pixel has an odd side."""
    if value % 2 == 0:
        raise ValueError(f"must be odd (the window is centred on the pixel), got {value}")
    return value


OddWindow = Annotated[int, AfterValidator(_odd_window)]
"""The side of a window centred on its pixel."""


class Smoothing(Section):
    """``post_processing.smoothing``: Bayesian smoothing of the probabilities (sits_smooth)."""

    enabled: bool = Field(True, description="Smooth the probability maps and map the result.")
    window_size: OddWindow = Field(
        7, ge=3, description="Side of the square neighbourhood (pixels, odd)."
    )
    neighborhood_fraction: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Fraction of the neighbourhood's highest logits that estimate the prior.",
    )
    smoothness: float | tuple[float, ...] = Field(
        20.0,
        description="Prior variance of a pixel's logit: one value, or one per class "
        "(higher smooths more).",
    )

    @field_validator("smoothness")
    @classmethod
    def _positive(cls, value: float | tuple[float, ...]) -> float | tuple[float, ...]:
        values = value if isinstance(value, tuple) else (value,)
        if not values or min(values) <= 0:
            raise ValueError("must be positive (one value, or one per class)")
        return value


class Regularisation(Section):
    """``post_processing.regularisation``: majority filter, then a sieve (iota2's first stage)."""

    enabled: bool = Field(True, description="Write the regularised map.")
    source: Literal["raw", "smoothed"] | None = Field(
        None,
        description="Map to regularise: the smoothed map when smoothing is on, else the raw one.",
    )
    majority_window: OddWindow = Field(
        3, ge=1, description="Side of the majority filter's window (pixels, odd; 1: none)."
    )
    mmu: float = Field(
        10.0, ge=0, description="Minimum mapping unit: smaller patches take a neighbour's class."
    )
    mmu_unit: Literal["pixels", "ha"] = Field("pixels", description="Unit of mmu.")


class Vectorisation(Section):
    """``post_processing.vectorisation``: the regularised map as polygons (iota2's OSO vector)."""

    enabled: bool = Field(False, description="Write the vector map (GeoPackage and GeoParquet).")
    douglas: float = Field(
        10.0,
        ge=0,
        description="Simplification tolerance (m of chain.proj; 0: pixel edges). GEOS's "
        "coverage simplification (Visvalingam-Whyatt) keeps shared edges: a vertex goes when "
        "its triangle's area is below the tolerance squared.",
    )


class Uncertainty(Section):
    """``post_processing.uncertainty``: uncertainty maps from the probabilities (sits)."""

    enabled: bool = Field(True, description="Write the uncertainty maps.")
    types: tuple[Literal["entropy", "margin", "least"], ...] = Field(
        ("entropy", "margin", "least"),
        min_length=1,
        description="entropy (normalised), margin (1 − first + second), least (1 − first).",
    )


class PostProcessing(Section):
    """``post_processing`` (sits and iota2's vectorisation builder): products after the map."""

    smoothing: Smoothing = Field(default_factory=Smoothing)
    regularisation: Regularisation = Field(default_factory=Regularisation)
    vectorisation: Vectorisation = Field(default_factory=Vectorisation)
    uncertainty: Uncertainty = Field(default_factory=Uncertainty)
    block_size: int = Field(
        1024, ge=64, description="Side of the square blocks the mosaics are streamed in (pixels)."
    )

    @property
    def any(self) -> bool:
        """Whether any product is on."""
        return any(
            part.enabled
            for part in (self.smoothing, self.regularisation, self.vectorisation, self.uncertainty)
        )

    @property
    def needs_probabilities(self) -> bool:
        """Whether a product reads the probability maps."""
        return self.smoothing.enabled or self.uncertainty.enabled or self.vectorisation.enabled

    @property
    def regularisation_source(self) -> Literal["raw", "smoothed"]:
        """The map regularisation reads."""
        if self.regularisation.source is not None:
            return self.regularisation.source
        return "smoothed" if self.smoothing.enabled else "raw"


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


class SensorsDataInterpolation(Section):
    """``sensors_data_interpolation`` (iota2's): the gap-filled grid, or each pixel's raw dates."""

    use_gapfilling: bool = Field(
        True,
        description="true: every pixel gap-filled onto the regular temporal grid. false: each "
        "pixel's own clear observations within the grid's period, with their day of year and a "
        "validity flag, no gap-filling (for dl_name LTAE or Transformer, which attend over real "
        "dates and mask the missing ones).",
    )
    max_observations: int | None = Field(
        None,
        gt=0,
        description="Raw dates: observation slots per pixel; a pixel with more clear "
        "observations keeps this many, evenly spread. Unset: the most acquisitions a tile has "
        "within the period.",
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
    landsat8: Landsat8 = Field(default_factory=Landsat8)
    stac: Stac = Field(default_factory=Stac)
    userFeat: UserFeat = Field(default_factory=UserFeat)  # noqa: N815 (iota2's key)
    user_sensor: UserSensor = Field(default_factory=UserSensor)
    arg_train: ArgTrain = Field(default_factory=ArgTrain)
    arg_classification: ArgClassification = Field(default_factory=ArgClassification)
    post_processing: PostProcessing = Field(default_factory=PostProcessing)
    python_data_managing: PythonDataManaging = Field(default_factory=PythonDataManaging)
    sensors_data_interpolation: SensorsDataInterpolation = Field(
        default_factory=SensorsDataInterpolation
    )
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

    @model_validator(mode="after")
    def _one_sentinel2_source(self) -> Config:
        given = [key for key, value in self.sentinel2_sources.items() if value is not None]
        if len(given) > 1:
            raise ValueError(
                f"{' and '.join(given)} are both set: give one Sentinel-2 source per run"
            )
        if not given and self.chain.l8_path is None and self.user_sensor.path is None:
            raise ValueError(
                "no image source: set chain.s2_path (Theia), chain.s2_s2c_path (Sen2Cor), "
                "stac.catalog, chain.l8_path (Landsat) or user_sensor.path"
            )
        if self.chain.user_feat_path is not None and not self.userFeat.patterns:
            raise ValueError("chain.user_feat_path is set but userFeat.patterns is empty")
        return self

    @model_validator(mode="after")
    def _stac_assets_cover_the_bands(self) -> Config:
        if self.stac.catalog is not None:
            mapped = set(self.stac.assets.values())
            missing = [b for b in (*self.sentinel_2.keep_bands, "SCL") if b.upper() not in mapped]
            if missing:
                raise ValueError(
                    f"stac.assets maps no asset to {missing}: map one asset key to each kept "
                    "band (sentinel_2.keep_bands) and to SCL"
                )
        return self

    @model_validator(mode="after")
    def _temporal_models_need_one_series(self) -> Config:
        several = (
            len([v for v in self.sentinel2_sources.values() if v is not None])
            + (self.chain.l8_path is not None)
            + (self.user_sensor.path is not None)
        )
        if several == 1 and self.chain.user_feat_path is None:
            return self
        for where, learner in self._learners():
            if learner in {"TempCNN", "LTAE", "Transformer"}:
                raise ValueError(
                    f"{where} trains {learner}, which reads one sensor's time series: with "
                    "several sensors or user features use MLPClassifier, rf or lightgbm"
                )
        return self

    @model_validator(mode="after")
    def _raw_dates_need_attention(self) -> Config:
        if self.sensors_data_interpolation.use_gapfilling:
            return self
        for where, learner in self._learners():
            if learner not in {"LTAE", "Transformer"}:
                raise ValueError(
                    f"sensors_data_interpolation.use_gapfilling is false but {where} trains "
                    f"{learner}: raw dates differ from pixel to pixel, only "
                    "deep_learning_parameters.dl_name LTAE or Transformer can read them"
                )
        return self

    @model_validator(mode="after")
    def _regression_settings(self) -> Config:
        train = self.arg_train
        deep = train.deep_learning_parameters
        if train.task != "regression":
            if train.quantile_interval is not None:
                raise ValueError(
                    "arg_train.quantile_interval is set but arg_train.task is "
                    "classification: the interval is a regression map's uncertainty"
                )
            criteria = {
                "arg_train.model_selection.criterion": train.model_selection.criterion,
                "arg_train.deep_learning_parameters.model_selection_criterion": (
                    None if deep is None else deep.model_selection_criterion
                ),
            }
            for key, criterion in criteria.items():
                if criterion in {"rmse", "r2"}:
                    raise ValueError(
                        f"{key} is {criterion}, a regression score, but arg_train.task is "
                        "classification: use fscore, oa or kappa"
                    )
            return self
        for where, learner in self._learners():
            if learner == "svm":
                raise ValueError(
                    f"arg_train.task is regression but {where} is svm, which only classifies "
                    "here: use rf, lightgbm or a network"
                )
        problems = {
            "arg_train.sample_augmentation: smote": train.sample_augmentation == "smote",
            "chain.merge_final_classifications: true": self.chain.merge_final_classifications,
            "arg_train.model_selection.criterion: "
            f"{train.model_selection.criterion}": train.model_selection.criterion
            in {"oa", "kappa"},
        }
        if deep is not None and deep.model_selection_criterion in {"oa", "kappa"}:
            problems[
                f"deep_learning_parameters.model_selection_criterion: "
                f"{deep.model_selection_criterion}"
            ] = True
        given = [key for key, bad in problems.items() if bad]
        if given:
            raise ValueError(
                f"arg_train.task is regression but {given[0]} is a classification setting: "
                "remove it (regression criteria: rmse, r2)"
            )
        if train.quantile_interval is not None and (
            deep is not None or train.classifier != "lightgbm"
        ):
            raise ValueError(
                "arg_train.quantile_interval needs arg_train.classifier lightgbm (a random "
                "forest's uncertainty is its trees' spread)"
            )
        return self

    @property
    def regression(self) -> bool:
        """Whether the run maps a continuous value (``arg_train.task: regression``)."""
        return self.arg_train.task == "regression"

    def _learners(self) -> list[tuple[str, str]]:
        """(where it is configured, learner name) of arg_train's learner, or of each candidate."""
        from sitsmap.learning.selection import expand_candidates

        candidates = expand_candidates(self.arg_train)
        if candidates:
            return [
                (f"arg_train.model_selection candidate {c.name!r}", c.learner) for c in candidates
            ]
        deep = self.arg_train.deep_learning_parameters
        if deep is None:
            return [("arg_train.classifier", self.arg_train.classifier)]
        return [("arg_train.deep_learning_parameters", deep.dl_name)]

    @model_validator(mode="after")
    def _post_processing_inputs(self) -> Config:
        post = self.post_processing
        smoothed = post.regularisation_source == "smoothed"
        if post.regularisation.enabled and smoothed and not post.smoothing.enabled:
            raise ValueError(
                "post_processing.regularisation.source is smoothed but "
                "post_processing.smoothing.enabled is false: turn smoothing on or set "
                "the source to raw"
            )
        if post.vectorisation.enabled and not post.regularisation.enabled:
            raise ValueError(
                "post_processing.vectorisation polygonises the regularised map: "
                "set post_processing.regularisation.enabled: true"
            )
        return self

    @property
    def probability_maps(self) -> bool:
        """Whether classification writes probability maps (asked for, or read by a product)."""
        if self.regression:
            return False
        return (
            self.arg_classification.enable_probability_map
            or self.post_processing.needs_probabilities
        )

    @property
    def sentinel2_sources(self) -> dict[str, object]:
        """The three places Sentinel-2 may come from, by key; at most one is set."""
        return {
            "chain.s2_path": self.chain.s2_path,
            "chain.s2_s2c_path": self.chain.s2_s2c_path,
            "stac.catalog": self.stac.catalog,
        }

    @property
    def seeds(self) -> list[int]:
        """One seed per run: random_seed, random_seed + 1, …."""
        return [self.arg_train.random_seed + run for run in range(self.arg_train.runs)]
