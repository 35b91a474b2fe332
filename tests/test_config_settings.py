"""No silent settings: unsupported keys are errors, keys without effect are warnings."""

import logging
from pathlib import Path

import pytest
import yaml

from sitsmap.config import config_from_mapping, dump_config, load_config
from sitsmap.config.checks import ineffective_settings
from sitsmap.demo import DEMO_OVERRIDES
from sitsmap.errors import ConfigError
from sitsmap.synth.world import chain_config

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

MINIMAL = {
    "chain": {
        "output_path": "out",
        "list_tile": "T31TCJ T31TCK",
        "s2_path": "S2",
        "ground_truth": "gt.shp",
    }
}

DEEP = "arg_train.deep_learning_parameters={dl_name: MLPClassifier, epochs: 2}"


def settings(*overrides: str) -> list[str]:
    """The ineffective-setting messages of MINIMAL with ``overrides``."""
    return ineffective_settings(config_from_mapping(MINIMAL, overrides))


def test_region_path_is_accepted_with_its_options():
    config = config_from_mapping(
        MINIMAL,
        [
            "chain.region_path=regions.shp",
            "chain.region_border_width=500",
            "chain.region_fallback=nearest",
        ],
    )
    assert config.chain.region_border_width == 500
    assert settings("chain.region_path=regions.shp", "chain.region_field=zone") == []


def test_region_path_null_and_default_region_field_are_fine():
    assert settings("chain.region_path=null", "chain.region_field=region") == []


def test_region_field_without_region_path_is_a_warning():
    (message,) = settings("chain.region_field=zone")
    assert message.startswith("chain.region_field has no effect")


def test_merge_with_one_run_is_an_error_naming_both_keys():
    with pytest.raises(ConfigError) as info:
        config_from_mapping(MINIMAL, ["chain.merge_final_classifications=true"])
    assert "chain.merge_final_classifications" in str(info.value)
    assert "arg_train.runs" in str(info.value)
    config = config_from_mapping(
        MINIMAL, ["chain.merge_final_classifications=true", "arg_train.runs=2"]
    )
    assert ineffective_settings(config) == []


def test_merge_options_while_merge_is_off():
    messages = settings(
        "chain.merge_final_classifications_ratio=0.2",
        "chain.merge_final_classifications_undecidedlabel=0",
        "chain.merge_final_classifications=false",
    )
    assert [m.split()[0] for m in messages] == [
        "chain.merge_final_classifications_undecidedlabel",
        "chain.merge_final_classifications_ratio",
    ]
    assert all("merge_final_classifications is false" in m for m in messages)


@pytest.mark.parametrize(
    ("overrides", "keys"),
    [
        (
            [
                "arg_train.classifier=lightgbm",
                "arg_train.otb_classifier_options={classifier.rf.nbtrees: 10}",
            ],
            ["arg_train.otb_classifier_options"],
        ),
        (["arg_train.lightgbm_parameters={num_leaves: 7}"], ["arg_train.lightgbm_parameters"]),
        (["arg_train.classifier=lightgbm", "arg_train.lightgbm_parameters={num_leaves: 7}"], []),
        (["arg_train.otb_classifier_options={classifier.rf.nbtrees: 10}"], []),
        (
            [
                DEEP,
                "arg_train.classifier=lightgbm",
                "arg_train.otb_classifier_options={classifier.rf.nbtrees: 10}",
                "arg_train.lightgbm_parameters={num_leaves: 7}",
            ],
            [
                "arg_train.classifier",
                "arg_train.otb_classifier_options",
                "arg_train.lightgbm_parameters",
            ],
        ),
    ],
)
def test_classifier_options_of_another_classifier(overrides, keys):
    assert [message.split()[0] for message in settings(*overrides)] == keys


def test_early_stop_patience_needs_early_stop():
    patience = "arg_train.deep_learning_parameters.early_stop_patience=3"
    given_rate = "arg_train.deep_learning_parameters.hyperparameters_solver.learning_rate=[0.001]"
    (message,) = settings(DEEP, given_rate, patience)
    assert message.startswith("arg_train.deep_learning_parameters.early_stop_patience ")
    assert "early stopping is off" in message
    enabled = "arg_train.deep_learning_parameters.enable_early_stop=true"
    assert settings(DEEP, given_rate, patience, enabled) == []
    assert settings(DEEP, patience) == []  # unset learning rate: early stopping is on


def test_options_of_another_sampling_strategy():
    messages = settings(
        "arg_train.sample_selection.strategy=percent",
        "arg_train.sample_selection.strategy.constant.nb=50",
        "arg_train.sample_selection.strategy.percent.p=0.3",
        "arg_train.sample_selection.strategy.total.v=10",
    )
    assert [m.split()[0] for m in messages] == [
        "arg_train.sample_selection.strategy.constant.nb",
        "arg_train.sample_selection.strategy.total.v",
    ]
    assert all("strategy is percent" in m for m in messages)


def test_other_ineffective_settings():
    assert settings("chain.split_ground_truth=false", "chain.ratio=0.7")[0].startswith(
        "chain.ratio has no effect"
    )
    chunks = settings(
        "python_data_managing.number_of_chunks=4", "python_data_managing.max_chunk_megabytes=10"
    )
    assert chunks[0].startswith("python_data_managing.max_chunk_megabytes has no effect")


def test_values_equal_to_defaults_and_defaults_are_quiet():
    assert settings() == []
    assert settings(DEEP, "arg_train.classifier=rf", "arg_train.lightgbm_parameters={}") == []


def test_warnings_are_logged_by_the_loader(tmp_path, caplog):
    path = tmp_path / "config.yaml"
    data = {**MINIMAL, "arg_train": {"classifier": "lightgbm", "deep_learning_parameters": {}}}
    path.write_text(yaml.safe_dump(data))
    with caplog.at_level(logging.WARNING, logger="sitsmap.config"):
        config = load_config(path)
    (record,) = caplog.records
    assert record.name == "sitsmap.config" and record.levelno == logging.WARNING
    assert record.getMessage() == f"{path}: arg_train.classifier has no effect: " + (
        "arg_train.deep_learning_parameters trains a MLPClassifier network"
    )
    # the resolved config.yaml of a run (every key) is read again quietly by the report
    resolved = tmp_path / "resolved.yaml"
    resolved.write_text(dump_config(config))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sitsmap.config"):
        assert load_config(resolved) == config
    assert caplog.records == []


def test_cli_shows_the_warning(tmp_path):
    from click.testing import CliRunner

    from sitsmap.cli import cli

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(MINIMAL))
    args = ["config", "show", str(path), "--set", "chain.region_field=zone"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "chain.region_field has no effect" in result.output


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_load_without_error_or_warning(example, caplog):
    with caplog.at_level(logging.WARNING, logger="sitsmap.config"):
        load_config(example)
    assert caplog.records == []


def test_synthetic_world_and_demo_configs_load(tmp_path, caplog):
    import datetime as dt

    raw = chain_config(["T31TCJ"], dt.date(2018, 1, 1), dt.date(2018, 12, 31))
    demo = chain_config(["T31TCJ"], dt.date(2018, 1, 1), dt.date(2018, 12, 31), regions=True)
    with caplog.at_level(logging.WARNING, logger="sitsmap.config"):
        config_from_mapping(raw, base_dir=tmp_path)
        config = config_from_mapping(demo, DEMO_OVERRIDES, base_dir=tmp_path)
    assert config.arg_train.deep_learning_parameters is not None
    assert config.chain.region_path is not None and config.chain.region_border_width == 500
    assert caplog.records == []
