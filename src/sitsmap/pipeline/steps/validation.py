"""Step validation: the map of each run against its own validation polygons."""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np

from sitsmap.config.schema import PostProcessing
from sitsmap.errors import InputDataError, StepError
from sitsmap.io.atomic import write_text
from sitsmap.io.figures import save_figure
from sitsmap.io.jsonfile import read_json, write_json
from sitsmap.io.vector import read_vector
from sitsmap.learning.selection import selection_text
from sitsmap.nomenclature import NODATA_CLASS
from sitsmap.pipeline.context import RunContext
from sitsmap.pipeline.preflight import configured_regions
from sitsmap.pipeline.steps.learning import model_selections
from sitsmap.validation.area import AreaAdjusted, area_adjusted_accuracy
from sitsmap.validation.figures import confusion_figure
from sitsmap.validation.metrics import ClassificationMetrics, compute_metrics, metrics_of_pairs
from sitsmap.validation.reference import class_pixel_counts, reference_and_production
from sitsmap.validation.report import results_json, results_txt
from sitsmap.vectors.ground_truth import FUSION_COLUMN
from sitsmap.vectors.regions import REGION_COLUMN
from sitsmap.vectors.split import SPLIT_COLUMN, VALIDATION

logger = logging.getLogger(__name__)


def validate_seed(context: RunContext, seed: int) -> None:
    """Confusion matrix of run ``seed``'s mosaic over its validation polygons.

    In a regression, its errors instead (see
    :mod:`sitsmap.pipeline.steps.regression_validation`).
    """
    if context.config.regression:
        from sitsmap.pipeline.steps.regression_validation import validate_regression_seed

        validate_regression_seed(context, seed)
        return
    validation = validation_polygons(context, seed)
    _validate_map(
        context, context.layout.final_map(seed), validation, f"seed_{seed}", required=True
    )
    if context.fold is not None:  # also on the ground the fold never learnt from
        left_out = read_vector(context.layout.left_out)
        _validate_map(context, context.layout.final_map(seed), left_out, f"left_out_seed_{seed}")


def validate_post_processed(context: RunContext, seed: int, kind: str) -> None:
    """Confusion matrix of run ``seed``'s ``kind`` map (Smoothed, Regularised), beside its raw one.

    A task per map, so that the raw map is validated while post-processing runs and
    the post-processed maps side by side.
    """
    validation = validation_polygons(context, seed)
    _validate_map(context, context.layout.final_map(seed, kind), validation, f"seed_{seed}_{kind}")


def validation_polygons(context: RunContext, seed: int) -> gpd.GeoDataFrame:
    """Run ``seed``'s validation polygons (or points).

    Raises
    ------
    InputDataError
        If the split has none.
    """
    polygons = read_vector(context.layout.split(seed))
    validation = polygons[polygons[SPLIT_COLUMN] == VALIDATION]
    if validation.empty:
        # the split step refuses strata of one polygon each; a high ratio can do this too
        strata = "the target" if context.config.regression else "classes"
        raise InputDataError(
            f"no validation polygon in the split of run {seed}: lower chain.ratio "
            f"({context.config.chain.ratio}), give {strata} more polygons, or set "
            "chain.split_ground_truth: false",
            context.config.chain.ground_truth,
        )
    return validation


def check_pixels_found(count: int, polygons, map_path, required: bool) -> None:
    """Refuse (``required``) or warn about a map with no pixel inside the polygons.

    Raises
    ------
    StepError
        If ``required`` and ``count`` is 0.
    """
    if count:
        return
    if required:
        raise StepError(
            f"no pixel of the map falls inside the {len(polygons)} validation polygon(s) "
            "(polygons narrower than a pixel, or over no-data): nothing to validate on",
            map_path,
        )
    logger.warning("%s: no map pixel falls inside a validation polygon", map_path)


def post_processed_kinds(post: PostProcessing) -> list[str]:
    """The kinds of class map ``post`` makes: Smoothed, Regularised (when enabled)."""
    enabled = {"Smoothed": post.smoothing.enabled, "Regularised": post.regularisation.enabled}
    return [kind for kind, on in enabled.items() if on]


def validate_fusion(context: RunContext) -> None:
    """Confusion matrix of the fused map over the polygons held back from every run."""
    truth = read_vector(context.layout.ground_truth)
    _validate_map(context, context.layout.fusion_map, truth[truth[FUSION_COLUMN]], "fusion")


def _validate_map(
    context: RunContext, map_path, polygons, name: str, required: bool = False
) -> None:
    """Write the confusion matrix, mapped class areas and figure of one map.

    Raises
    ------
    StepError
        If ``required`` and no map pixel falls inside the polygons.
    """
    layout, chain = context.layout, context.config.chain
    reference, production = reference_and_production(
        map_path, polygons.to_crs(chain.proj), chain.data_field, nodata=NODATA_CLASS
    )
    check_pixels_found(reference.size, polygons, map_path, required)
    metrics = metrics_of_pairs(reference, production)
    mapped = class_pixel_counts(map_path, nodata=NODATA_CLASS)
    record = {
        "labels": metrics.labels,
        "confusion": metrics.confusion.tolist(),
        "mapped_pixels": [int(mapped.get(code, 0)) for code in metrics.labels],
        "pixel_area_ha": chain.spatial_resolution**2 / 10_000,
    }
    if REGION_COLUMN in polygons.columns:
        record["regions"] = _per_region(context, map_path, polygons)
    write_json(layout.final / f"validation_{name}.json", record)
    save_figure(
        confusion_figure(metrics, context.nomenclature),
        layout.final / f"confusion_matrix_{name}.png",
    )


def _per_region(context: RunContext, map_path, polygons) -> dict[str, dict]:
    """Each region's confusion matrix, over its own validation polygons."""
    chain = context.config.chain
    regions = {}
    for region, group in polygons.groupby(REGION_COLUMN, sort=True):
        reference, production = reference_and_production(
            map_path, group.to_crs(chain.proj), chain.data_field, nodata=NODATA_CLASS
        )
        if reference.size:
            metrics = metrics_of_pairs(reference, production)
            regions[str(region)] = {
                "labels": metrics.labels,
                "confusion": metrics.confusion.tolist(),
            }
    return regions


def summarise(context: RunContext) -> None:
    """Write ``RESULTS.txt`` and ``results.json`` over every run (and the fusion)."""
    if context.config.regression:
        from sitsmap.pipeline.steps.regression_validation import summarise_regression_runs

        summarise_regression_runs(context)
        return
    layout, nomenclature = context.layout, context.nomenclature
    records = {
        seed: read_json(layout.final / f"validation_seed_{seed}.json")
        for seed in context.config.seeds
    }
    per_seed = [(seed, _metrics(record)) for seed, record in records.items()]
    report = results_json(per_seed)
    text = results_txt(per_seed, nomenclature)
    for entry, record in zip(report["seeds"], records.values(), strict=True):
        entry["area_adjusted"] = _area_adjusted(record).to_dict()
    if any("regions" in record for record in records.values()):
        report["regions"], block = _regions_report(context, records)
        text += block
    products = post_processed_kinds(context.config.post_processing)
    if products:
        report["post_processing"], block = _post_processing_report(context, products)
        text += block
    if context.config.chain.merge_final_classifications:
        fusion = read_json(layout.final / "validation_fusion.json")
        report["fusion"] = results_json([(-1, _metrics(fusion))])["seeds"][0]
        del report["fusion"]["seed"]
        text += "\n\n#### Fusion of the runs (majority voting) ####\n\n"
        text += results_txt([(-1, _metrics(fusion))], nomenclature)
    if context.config.arg_train.model_selection.candidates:
        report["model_selection"] = model_selections(
            layout, context.config.seeds, configured_regions(context.config)
        )
        text += selection_text(report["model_selection"])
    write_json(layout.results_json, report)
    write_text(layout.results_txt, text)


def _post_processing_report(context: RunContext, products: list[str]) -> tuple[dict, str]:
    """``results.json``'s ``post_processing`` entry and ``RESULTS.txt``'s blocks.

    Each post-processed map is validated on the same polygons as the raw map, so
    the figures say whether smoothing and regularisation helped.
    """
    layout, report, text = context.layout, {}, ""
    for kind in products:
        per_seed = [
            (seed, _metrics(read_json(layout.final / f"validation_seed_{seed}_{kind}.json")))
            for seed in context.config.seeds
        ]
        report[kind.lower()] = results_json(per_seed)
        text += f"\n\n#### {kind} map ####\n\n" + results_txt(per_seed, context.nomenclature)
    return report, text


def _regions_report(context: RunContext, records: dict[int, dict]) -> tuple[dict, str]:
    """``results.json``'s ``regions`` entry and ``RESULTS.txt``'s per-region blocks.

    Per region: OA, kappa, mean and per-class F-score and support (over the runs),
    the classes its model lacked, and the model it used when it had nothing to learn.
    """
    names = sorted({region for record in records.values() for region in record["regions"]})
    report, text = {}, ""
    for region in names:
        per_seed = [
            (seed, _metrics(record["regions"][region]))
            for seed, record in records.items()
            if region in record["regions"]
        ]
        entry = results_json(per_seed)
        entry["models"] = {str(seed): _region_model(context, seed, region) for seed in records}
        report[region] = entry
        text += f"\n\n#### Region {region} ####\n\n"
        for seed, model in entry["models"].items():
            if model.get("fallback") or model.get("missing_classes"):
                text += _model_note(seed, model)
        text += results_txt(per_seed, context.nomenclature)
    return report, text


def _region_model(context: RunContext, seed: int, region: str) -> dict:
    """What learning wrote about a region's model (samples, classes, fallback)."""
    path = context.layout.model_dir(seed, region) / "region.json"
    return read_json(path) if path.is_file() else {}


def _model_note(seed: str, model: dict) -> str:
    notes = []
    if model.get("fallback"):
        notes.append(f"no learning sample: classified with the {model['fallback']} model")
    if model.get("missing_classes"):
        notes.append(f"no sample of class(es) {model['missing_classes']} learnt elsewhere")
    return f"# run {seed}: " + "; ".join(notes) + "\n"


def _metrics(record: dict) -> ClassificationMetrics:
    return compute_metrics(np.asarray(record["confusion"], dtype=np.int64), record["labels"])


def _area_adjusted(record: dict) -> AreaAdjusted:
    """Olofsson et al. (2014) estimators, strata = the map's classes.

    Validation pixels come from whole polygons, not a stratified random sample
    of pixels, so the intervals are narrower than the design-based ones.
    """
    return area_adjusted_accuracy(
        np.asarray(record["confusion"], dtype=np.int64),
        np.asarray(record["mapped_pixels"], dtype=np.float64),
        record["labels"],
        pixel_area_ha=record["pixel_area_ha"],
    )
