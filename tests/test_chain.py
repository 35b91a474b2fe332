"""The chain end to end on a tiny synthetic world, resume, and bad input."""

import json

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from sitsmap.cli import cli
from sitsmap.config import load_config
from sitsmap.pipeline.run import run_chain, step_states

FAST = (
    "arg_train.sample_selection={sampler: periodic, strategy: constant, strategy.constant.nb: 300}",
    "arg_train.otb_classifier_options={classifier.rf.nbtrees: 30, classifier.rf.max: 20, "
    "classifier.rf.min: 2}",
    "arg_classification.enable_probability_map=true",
    "python_data_managing.number_of_chunks=3",
    "scheduling.scheduler=synchronous",
)


def config_for(world, *extra, output="output"):
    return load_config(
        world / "config.yaml", (*FAST, f"chain.output_path={world / output}", *extra)
    )


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, small_world):
    output = tmp_path_factory.mktemp("run")
    config = load_config(small_world / "config.yaml", (*FAST, f"chain.output_path={output}"))
    return run_chain(config)


def test_run_writes_every_final_product(finished_run):
    layout = finished_run.layout
    for path in (
        layout.final_map(0),
        layout.final_map(0, "Confidence"),
        layout.final_map(0, "ProbabilityMap"),
        layout.final_validity,
        layout.results_txt,
        layout.results_json,
        layout.confusion_figure(0),
        layout.class_statistics(0),
        layout.samples(0),
        layout.config,
    ):
        assert path.exists(), path
    with rasterio.open(layout.final_map(0)) as src:
        assert src.crs.to_epsg() == 2154
        assert src.res == (10.0, 10.0)
        assert src.colormap(1)[23][:3] == (0, 0, 255)
        classes = src.read(1)
    with rasterio.open(layout.final_map(0, "ProbabilityMap")) as src:
        probabilities = src.read()
        assert (
            src.count == len(json.loads(layout.results_json.read_text())["seeds"][0]["labels"])
            or src.count > 5
        )
    valid = classes > 0
    assert valid.mean() > 0.5
    # probabilities are percentages that sum to about 100 where the map has a class
    totals = probabilities[:, valid].astype(int).sum(axis=0)
    assert np.all(np.abs(totals - 100) <= probabilities.shape[0])


def test_results_are_honest_and_complete(finished_run):
    results = json.loads(finished_run.layout.results_json.read_text())
    seed = results["seeds"][0]
    assert seed["seed"] == 0
    confusion = np.array(seed["confusion"])
    assert confusion.shape == (len(seed["labels"]),) * 2
    assert seed["oa"] == pytest.approx(np.trace(confusion) / confusion.sum())
    assert seed["oa"] > 0.6  # a tiny world and few trees, yet clearly better than chance
    assert set(results["summary"]) >= {"oa", "kappa", "mean_fscore"}
    text = finished_run.layout.results_txt.read_text()
    assert "KAPPA" in text and "OA" in text


def test_every_step_is_recorded_as_done(finished_run):
    states = step_states(finished_run.config)
    assert [s.step for s in states][0] == "init"
    assert all(s.done == s.total > 0 for s in states)


def test_samples_never_come_from_validation_polygons(finished_run):
    import geopandas as gpd
    import pandas as pd

    layout = finished_run.layout
    samples = pd.read_parquet(layout.samples(0), columns=["sitsmap_pid"])
    sides = gpd.read_file(layout.split(0))
    validation_ids = set(sides.loc[sides.split == "validation", "sitsmap_pid"])
    assert validation_ids
    assert not set(samples.sitsmap_pid) & validation_ids
    statistics = pd.read_csv(layout.class_statistics(0))
    assert list(statistics.columns[:3]) == ["label", "name", "candidates"]
    assert (statistics["count"] <= 300).all()


def test_resume_after_a_crash_redoes_only_what_is_missing(small_world, tmp_path, monkeypatch):
    from sitsmap.pipeline.steps import classification

    config = config_for(small_world, output=str(tmp_path / "out"))
    original = classification.classify_tile

    def crash_on_one_tile(context, tile, seed, **arguments):
        if tile == "T31TDK":
            raise KeyboardInterrupt  # like Ctrl-C in the middle of the run
        original(context, tile, seed, **arguments)

    monkeypatch.setattr(classification, "classify_tile", crash_on_one_tile)
    with pytest.raises(KeyboardInterrupt):
        run_chain(config)
    layout = config_for(small_world, output=str(tmp_path / "out"))
    done_before = {
        p.name: p.stat().st_mtime_ns
        for p in (tmp_path / "out" / ".sitsmap" / "done").glob("*.json")
    }
    assert "learning-seed0.json" in done_before
    assert "classification-T31TDK-seed0.json" not in done_before
    assert not (tmp_path / "out" / "final" / "Classif_Seed_0.tif").exists()
    assert not list((tmp_path / "out" / "classif").rglob("Classif_T31TDK*"))

    monkeypatch.setattr(classification, "classify_tile", original)
    run_chain(layout)
    done_after = {
        p.name: p.stat().st_mtime_ns
        for p in (tmp_path / "out" / ".sitsmap" / "done").glob("*.json")
    }
    assert all(done_after[name] == mtime for name, mtime in done_before.items())
    assert "classification-T31TDK-seed0.json" in done_after

    # the interrupted-then-resumed run gives the same map as a straight run
    straight = run_chain(config_for(small_world, output=str(tmp_path / "straight")))
    with (
        rasterio.open(tmp_path / "out" / "final" / "Classif_Seed_0.tif") as a,
        rasterio.open(straight.layout.final_map(0)) as b,
    ):
        np.testing.assert_array_equal(a.read(), b.read())


def test_retries_recover_from_a_transient_failure(small_world, tmp_path, monkeypatch):
    from sitsmap.pipeline.steps import split

    calls = []
    original = split.split_ground_truth

    def flaky(context, seed):
        calls.append(seed)
        if len(calls) == 1:
            raise OSError("transient network file system hiccup")
        original(context, seed)

    monkeypatch.setattr(split, "split_ground_truth", flaky)
    config = config_for(
        small_world,
        "task_retry_limits.allowed_retry=1",
        "chain.last_step=split",
        output=str(tmp_path / "out"),
    )
    run_chain(config)
    assert len(calls) == 2
    assert (tmp_path / "out" / "dataAppVal" / "seed_0.gpkg").exists()


def test_later_step_without_earlier_ones_is_a_clear_error(small_world, tmp_path):
    config = config_for(small_world, output=str(tmp_path / "out"))
    result = CliRunner().invoke(
        cli,
        [
            "run",
            str(small_world / "config.yaml"),
            *sum((["--set", s] for s in (*FAST, f"chain.output_path={tmp_path / 'out'}")), []),
            "--first-step",
            "learning",
        ],
    )
    assert result.exit_code == 2
    assert "has not been run" in result.stderr
    assert config.chain.output_path.exists()


def test_report_command_rewrites_the_page(finished_run):
    page = finished_run.layout.root / "report.html"
    page.unlink()
    result = CliRunner().invoke(cli, ["report", str(finished_run.layout.root)])
    assert result.exit_code == 0, result.output
    html = page.read_text()
    assert "Confusion matrix" in html and "Water bodies" in html


def test_steps_command_lists_state(finished_run, small_world):
    args = [
        "steps",
        str(small_world / "config.yaml"),
        *sum((["--set", s] for s in FAST), []),
        "--set",
        f"chain.output_path={finished_run.layout.root}",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].split()[0] == "init" and "done" in lines[0]
    assert len(lines) == 9  # the 9 steps, postprocessing included
    assert all(line.split()[2] == "done" for line in lines)


def test_threads_scheduler_gives_the_same_map(finished_run, small_world, tmp_path):
    config = config_for(
        small_world,
        "scheduling.scheduler=threads",
        "scheduling.workers=2",
        output=str(tmp_path / "threads"),
    )
    context = run_chain(config)
    with (
        rasterio.open(context.layout.final_map(0)) as a,
        rasterio.open(finished_run.layout.final_map(0)) as b,
    ):
        np.testing.assert_array_equal(a.read(), b.read())


def test_several_runs_fusion_and_area_adjusted(small_world, tmp_path):
    config = config_for(
        small_world,
        "arg_train.runs=2",
        "arg_train.random_seed=7",
        "chain.merge_final_classifications=true",
        "arg_classification.enable_probability_map=false",
        output=str(tmp_path / "runs"),
    )
    layout = run_chain(config).layout
    results = json.loads(layout.results_json.read_text())
    assert [s["seed"] for s in results["seeds"]] == [7, 8]
    assert (
        results["summary"]["oa"]["ci95"] > 0
        or results["seeds"][0]["oa"] == results["seeds"][1]["oa"]
    )
    assert "+-" in layout.results_txt.read_text()
    for seed in results["seeds"]:
        adjusted = seed["area_adjusted"]
        assert adjusted["area_unit"] == "ha"
        assert 0 <= adjusted["overall_accuracy"]["estimate"] <= 1
    # the fusion has its own polygons, never used for learning by any run
    assert "oa" in results["fusion"] and results["fusion"]["confusion"]
    with rasterio.open(layout.fusion_map) as fused, rasterio.open(layout.final_map(7)) as one:
        assert fused.shape == one.shape and fused.crs == one.crs
        assert fused.colormap(1)[255][:3] == (255, 255, 255)
    import geopandas as gpd
    import pandas as pd

    truth = gpd.read_file(layout.ground_truth)
    held = set(truth.loc[truth.fusion_validation, "sitsmap_pid"])
    assert held
    for seed in (7, 8):
        learnt = set(pd.read_parquet(layout.samples(seed), columns=["sitsmap_pid"]).sitsmap_pid)
        assert not learnt & held


def test_processes_scheduler_and_existing_cluster_address(small_world, tmp_path):
    from distributed import LocalCluster

    processes = config_for(
        small_world,
        "scheduling.scheduler=processes",
        "scheduling.workers=2",
        "chain.last_step=preprocessing",
        output=str(tmp_path / "procs"),
    )
    run_chain(processes)
    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        remote = config_for(
            small_world, "chain.last_step=preprocessing", output=str(tmp_path / "remote")
        )
        run_chain(remote, scheduler=cluster.scheduler_address)
    for tile in remote.chain.list_tile:
        with (
            rasterio.open(tmp_path / "procs" / "features" / tile / "PixelsValidity.tif") as a,
            rasterio.open(tmp_path / "remote" / "features" / tile / "PixelsValidity.tif") as b,
        ):
            np.testing.assert_array_equal(a.read(), b.read())


def test_unreachable_scheduler_is_a_clear_error(small_world, tmp_path):
    from sitsmap.errors import SchedulingError

    config = config_for(small_world, "chain.last_step=init", output=str(tmp_path / "x"))
    with pytest.raises(SchedulingError, match="cannot reach"):
        run_chain(config, scheduler="tcp://127.0.0.1:9")


def test_extraction_with_block_windows_matches_strips(finished_run, monkeypatch):
    import pandas as pd
    from rasterio.windows import Window

    from sitsmap.pipeline.steps import sampling

    layout = finished_run.layout
    expected = pd.read_parquet(layout.tile_samples("T31TCJ", 0))

    def quadrants(context, stack):
        h, w = stack.grid.height // 2, stack.grid.width // 2
        return [
            Window(
                c, r, w if c == 0 else stack.grid.width - w, h if r == 0 else stack.grid.height - h
            )
            for r in (0, h)
            for c in (0, w)
        ]

    monkeypatch.setattr(sampling, "feature_windows", quadrants)
    layout.tile_samples("T31TCJ", 0).unlink()
    sampling.extract(finished_run, "T31TCJ", 0)
    pd.testing.assert_frame_equal(pd.read_parquet(layout.tile_samples("T31TCJ", 0)), expected)
