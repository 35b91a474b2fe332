"""The ``sitsmap`` command: a thin layer where each command calls one library function.

Any :class:`~sitsmap.errors.SitsmapError` becomes one line on stderr,
``sitsmap: error: <file>: <problem>``, and exit code 2; ``--debug`` shows
the traceback instead.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click

from sitsmap.config.schema import STEP_NAMES
from sitsmap.console import setup_logging
from sitsmap.errors import SitsmapError

DEFAULT_TILES = "T31TCJ,T31TCK,T31TDJ,T31TDK"


class _Group(click.Group):
    """A click group that turns SitsmapError into one line and exit code 2."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except SitsmapError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"sitsmap: error: {exc}", err=True)
            ctx.exit(2)
        except OSError as exc:  # the machine's, not the input's: a full disk, a read-only folder
            if ctx.obj and ctx.obj.get("debug"):
                raise
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"sitsmap: error: {where}{exc.strerror or exc}", err=True)
            ctx.exit(2)


@click.group(cls=_Group)
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.option("-v", "--verbose", count=True, help="More log output.")
@click.version_option(package_name="sitsmap")
@click.pass_context
def cli(ctx: click.Context, debug: bool, verbose: int) -> None:
    """Land-cover maps from Sentinel-2 image time series."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    setup_logging(verbose)


def _date(_ctx: click.Context, _param: click.Parameter, value: str) -> dt.date:
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return dt.datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD or YYYYMMDD)")


@cli.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--tiles", default=DEFAULT_TILES, show_default=True, help="Comma-separated tiles.")
@click.option(
    "--size",
    default=256,
    show_default=True,
    type=click.IntRange(32, 10980),
    help="Pixels per tile side at 10 m (even).",
)
@click.option("--start", default="2018-01-01", show_default=True, callback=_date)
@click.option("--end", default="2018-12-31", show_default=True, callback=_date)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--layout",
    "layouts",
    multiple=True,
    metavar="LAYOUT",
    help="Product layout: theia, theia-zip, safe, safe-zip, stac or landsat (repeatable or "
    "comma-separated; one Sentinel-2 layout at most, landsat alone or with one) "
    "[default: theia].",
)
@click.option(
    "--regions",
    default=1,
    show_default=True,
    type=click.IntRange(1, 4),
    help="Eco-regions: 2 to 4 split the world into bands whose crop calendars, spectra and "
    "class mix differ, written to regions.gpkg.",
)
def synth(
    out_dir: Path,
    tiles: str,
    size: int,
    start: dt.date,
    end: dt.date,
    seed: int,
    layouts: tuple[str, ...],
    regions: int,
) -> None:
    """Generate a synthetic Sentinel-2 world (Theia L2A layout by default) in OUT_DIR."""
    from sitsmap.synth import generate_world

    tile_list = [t.strip() for t in tiles.replace(" ", ",").split(",") if t.strip()]
    summary = generate_world(
        out_dir,
        tile_list,
        size=size,
        start=start,
        end=end,
        seed=seed,
        layouts=layouts or ("theia",),
        regions=regions,
    )
    click.echo(summary.describe())


@cli.command("check-db")
@click.argument("in_path", metavar="IN", type=click.Path(path_type=Path))
@click.argument("out_path", metavar="OUT", type=click.Path(path_type=Path))
@click.option("--data-field", default="code", show_default=True, help="Integer class field.")
@click.option("--epsg", default=2154, show_default=True, type=int, help="Output EPSG code.")
@click.option("--do-corrections", is_flag=True, help="Fix the defects instead of only reporting.")
def check_db(
    in_path: Path, out_path: Path, data_field: str, epsg: int, do_corrections: bool
) -> None:
    """Check (and with --do-corrections, fix) a ground-truth vector file."""
    from sitsmap.vectors.check import check_database

    report = check_database(
        in_path, out_path, data_field=data_field, epsg=epsg, do_corrections=do_corrections
    )
    click.echo(report.describe())
    if not do_corrections and report.has_defects:
        sys.exit(1)


@cli.group(cls=_Group)
def config() -> None:
    """Inspect configurations."""


@config.command("show")
@click.argument("config_path", metavar="CONFIG", type=click.Path(path_type=Path))
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="SECTION.KEY=VALUE",
    help="Override a key (repeatable).",
)
def config_show(config_path: Path, overrides: tuple[str, ...]) -> None:
    """Print the resolved configuration (defaults filled in, overrides applied)."""
    from sitsmap.config import dump_config, load_config

    click.echo(dump_config(load_config(config_path, overrides)), nl=False)


@config.command("keys")
@click.argument("section", required=False)
def config_keys(section: str | None) -> None:
    """Print every configuration key (of SECTION) with its default and what it does."""
    from sitsmap.config.keys import describe_keys

    try:
        click.echo(describe_keys(section), nl=False)
    except KeyError:
        raise click.BadParameter(f"no section {section!r}", param_hint="SECTION") from None


_SET = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="SECTION.KEY=VALUE",
    help="Override a configuration key (repeatable).",
)


@cli.command()
@click.argument("config_path", metavar="CONFIG", type=click.Path(path_type=Path))
@_SET
@click.option("--first-step", type=click.Choice(STEP_NAMES), help="First step to (re)run.")
@click.option("--last-step", type=click.Choice(STEP_NAMES), help="Last step to run.")
@click.option("--scheduler", help="synchronous | threads | processes | tcp://host:port.")
@click.option("--workers", type=click.IntRange(1), help="Parallel workers.")
@click.option("--dry-run", is_flag=True, help="Print the tasks that would run, and why; run none.")
def run(
    config_path: Path,
    overrides: tuple[str, ...],
    first_step: str | None,
    last_step: str | None,
    scheduler: str | None,
    workers: int | None,
    dry_run: bool,
) -> None:
    """Run the land-cover chain of CONFIG: the tasks that are missing or out of date.

    A task is out of date when a configuration value it reads, one of its input
    files, a task it needs or sitsmap's version changed since it ran.
    """
    from sitsmap.config import load_config
    from sitsmap.pipeline.preflight import check_run_inputs

    config = load_config(config_path, overrides)
    check_run_inputs(config, config_path)  # a bad path costs no import of the chain

    from sitsmap.pipeline.run import plan_chain, run_chain

    if dry_run:
        click.echo(plan_chain(config, first_step, last_step, config_path).describe(), nl=False)
        return
    context = run_chain(config, first_step, last_step, scheduler, workers, config_path)
    _echo_outputs(context)


@cli.command()
@click.argument("config_path", metavar="CONFIG", type=click.Path(path_type=Path))
@_SET
@click.option(
    "--folds",
    type=click.Choice(["tiles", "regions"]),
    default="tiles",
    show_default=True,
    help="Leave one tile (or one eco-region of chain.region_path) out in turn.",
)
@click.option("--group-field", help="Leave one value of this ground-truth field out instead.")
@click.option("--scheduler", help="synchronous | threads | processes | tcp://host:port.")
@click.option("--workers", type=click.IntRange(1), help="Parallel workers.")
def crossval(
    config_path: Path,
    overrides: tuple[str, ...],
    folds: str,
    group_field: str | None,
    scheduler: str | None,
    workers: int | None,
) -> None:
    """Spatial cross-validation of CONFIG: leave each tile (or group) out in turn."""
    from sitsmap.config import load_config
    from sitsmap.pipeline.preflight import check_run_inputs

    config = load_config(config_path, overrides)
    check_run_inputs(config, config_path)

    from sitsmap.pipeline.run import run_crossval

    if folds == "regions" and group_field:
        raise click.UsageError("--folds regions and --group-field are exclusive")
    context = run_crossval(config, group_field, scheduler, workers, config_path, folds)
    summary = context.layout.crossval / "summary.txt"
    click.echo(summary.read_text(encoding="utf-8"), nl=False)
    click.echo(f"summary (JSON): {context.layout.crossval / 'summary.json'}")
    click.echo(f"report:         {context.layout.root / 'report.html'}")


@cli.command()
@click.argument("config_path", metavar="CONFIG", type=click.Path(path_type=Path))
@_SET
def steps(config_path: Path, overrides: tuple[str, ...]) -> None:
    """List the chain's steps: done, stale (and why) or missing, for CONFIG's own tasks."""
    from sitsmap.config import load_config
    from sitsmap.pipeline.run import step_states

    for state in step_states(load_config(config_path, overrides)):
        click.echo(
            f"{state.step:<15} {state.done:>3}/{state.total:<3} {state.state:<8} "
            f"{state.seconds:8.1f} s"
        )
        for reason in state.reasons[:5]:
            click.echo(f"{'':<20}stale: {reason}")
        if len(state.reasons) > 5:
            click.echo(f"{'':<20}… and {len(state.reasons) - 5} more")


@cli.command()
@click.argument("out_dir", default="demo_output", type=click.Path(file_okay=False, path_type=Path))
@click.option("--size", default=256, show_default=True, type=click.IntRange(64, 10980))
@click.option("--scheduler", default="processes", show_default=True)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1))
@click.option(
    "--regression",
    is_flag=True,
    help="Map the world's biomass (t/ha) by regression instead of its land cover "
    "(config_regression.yaml, into OUT_DIR/output_regression).",
)
@_SET
def demo(
    out_dir: Path,
    size: int,
    scheduler: str,
    workers: int,
    regression: bool,
    overrides: tuple[str, ...],
) -> None:
    """Generate a synthetic 4-tile world and run a scaled-down reference scenario on it."""
    from sitsmap.demo import IDEAL_MODEL_NOTE, run_demo

    context = run_demo(
        out_dir,
        size=size,
        scheduler=scheduler,
        workers=workers,
        overrides=overrides,
        regression=regression,
    )
    _echo_outputs(context)
    if regression:
        click.echo(IDEAL_MODEL_NOTE)


@cli.command()
@click.argument("output_dir", type=click.Path(file_okay=False, path_type=Path))
def report(output_dir: Path) -> None:
    """Write OUTPUT_DIR/report.html: one self-contained page about a run."""
    from sitsmap.report import write_report

    click.echo(f"report: {write_report(output_dir)}")


@cli.command("suggest-samples")
@click.argument("output_dir", metavar="OUTPUT", type=click.Path(file_okay=False, path_type=Path))
@click.option("--n", "count", default=200, show_default=True, type=click.IntRange(1))
@click.option(
    "--min-distance",
    default=500.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Smallest distance between two points (m).",
)
@click.option("--seed", type=int, help="Run whose map is read [default: the first].")
@click.option(
    "--measure",
    type=click.Choice(["margin", "entropy", "least"]),
    default="margin",
    show_default=True,
    help="Uncertainty that ranks the pixels.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="GeoPackage to write [default: OUTPUT/final/suggested_samples_seed_N.gpkg].",
)
def suggest_samples(
    output_dir: Path,
    count: int,
    min_distance: float,
    seed: int | None,
    measure: str,
    out: Path | None,
) -> None:
    """Where to sample next: OUTPUT's most uncertain pixels, spread apart, as points."""
    from sitsmap.pipeline.suggestions import suggest_samples as suggest

    path = suggest(output_dir, count, min_distance, seed=seed, measure=measure, out=out)
    click.echo(f"suggested samples: {path}")


@cli.command()
@click.argument("map_path", metavar="MAP", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("reference", metavar="REFERENCE", type=click.Path(path_type=Path))
@click.option("--field", required=True, help="Integer class field of the reference polygons.")
@click.option(
    "--nomenclature",
    type=click.Path(dir_okay=False, path_type=Path),
    help="name:code file of the class names (OSO's by default).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder [default: MAP's stem + _validation, beside MAP].",
)
def validate(
    map_path: Path, reference: Path, field: str, nomenclature: Path | None, out_dir: Path | None
) -> None:
    """Confusion matrix, OA, kappa, F-scores and areas of any MAP against REFERENCE polygons."""
    from sitsmap.validation.any_map import validate_map

    out = validate_map(map_path, reference, field, nomenclature, out_dir)
    click.echo(f"results: {out / 'RESULTS.txt'}")
    click.echo(f"         {out / 'results.json'}")


def _echo_outputs(context) -> None:
    layout = context.layout
    for seed in context.config.seeds:
        for kind, label in (
            ("Classif", "map"),
            ("Regression", "map"),
            ("RegressionUncertainty", "uncertainty"),
            ("Smoothed", "smoothed"),
            ("Regularised", "regular"),
        ):
            if layout.final_map(seed, kind).exists():
                click.echo(f"{label} (seed {seed}): ".ljust(17) + str(layout.final_map(seed, kind)))
        if layout.vector_map(seed).exists():
            click.echo(f"vector (seed {seed}): {layout.vector_map(seed)}")
    if layout.results_txt.exists():
        click.echo(f"results:         {layout.results_txt}")
        click.echo(f"results (JSON):  {layout.results_json}")
        _echo_accuracy(layout.results_json)
    if (layout.root / "report.html").exists():
        click.echo(f"report:          {layout.root / 'report.html'}")


def _echo_accuracy(results_json: Path) -> None:
    """One line per map: overall accuracy and kappa of the raw and post-processed maps."""
    from sitsmap.io.jsonfile import read_json

    results = read_json(results_json)
    if results.get("task") == "regression":
        for level in ("pixel", "polygon"):
            scores = results["summary"][level]
            rmse, r2 = (scores[key]["mean"] for key in ("rmse", "r2"))
            rmse_text = "-" if rmse is None else f"{rmse:.4g}"
            r2_text = "-" if r2 is None else f"{r2:.3f}"
            click.echo(f"RMSE {level}:".ljust(17) + f"{rmse_text}  R² {r2_text}")
        return
    maps = {"raw": results, **results.get("post_processing", {})}
    for name, entry in maps.items():
        scores = [entry["summary"][key]["mean"] for key in ("oa", "kappa")]
        oa, kappa = ("-" if value is None else f"{value:.3f}" for value in scores)
        click.echo(f"OA {name}:".ljust(17) + f"{oa}  kappa {kappa}")


def main() -> None:
    """Entry point of the ``sitsmap`` console script."""
    cli(obj={})


if __name__ == "__main__":
    main()
