from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from sitsmap.cli import cli
from sitsmap.config import load_config
from sitsmap.errors import ConfigError

MINIMAL = {
    "chain": {
        "output_path": "out",
        "list_tile": "T31TCJ T31TCK",
        "s2_path": "S2",
        "ground_truth": "gt.shp",
    }
}


def write(tmp_path: Path, data: dict, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_defaults_and_relative_paths(tmp_path):
    config = load_config(write(tmp_path, MINIMAL))
    assert config.chain.list_tile == ("T31TCJ", "T31TCK")
    assert config.chain.output_path == tmp_path / "out"
    assert config.chain.ground_truth == tmp_path / "gt.shp"
    assert config.sentinel_2.temporal_resolution == 10
    assert config.arg_train.sample_selection.sampler == "random"
    assert config.seeds == [0]


def test_config_is_frozen(tmp_path):
    config = load_config(write(tmp_path, MINIMAL))
    with pytest.raises(ValueError):
        config.chain.ratio = 0.9


def test_reference_scenario_keys(tmp_path):
    data = {
        **MINIMAL,
        "sentinel_2": {"temporal_resolution": 10, "start_date": "20180101", "end_date": "20181231"},
        "arg_train": {
            "runs": 3,
            "random_seed": 4,
            "sample_selection": {
                "sampler": "periodic",
                "strategy": "constant",
                "strategy.constant.nb": 100000,
            },
            "deep_learning_parameters": {
                "dl_name": "MLPClassifier",
                "epochs": 200,
                "model_selection_criterion": "fscore",
                "hyperparameters_solver": {"learning_rate": [1e-5], "batch_size": [4096]},
            },
        },
        "arg_classification": {"enable_probability_map": True},
        "python_data_managing": {"number_of_chunks": 50},
    }
    config = load_config(write(tmp_path, data))
    assert config.sentinel_2.start_date.isoformat() == "2018-01-01"
    assert config.arg_train.sample_selection.constant_nb == 100000
    assert config.arg_train.deep_learning_parameters.hyperparameters_solver.batch_size == (4096,)
    assert config.seeds == [4, 5, 6]


def test_unknown_key_suggests_nearest(tmp_path):
    data = {**MINIMAL, "arg_train": {"sample_selction": {}}}
    with pytest.raises(
        ConfigError,
        match=r"unknown key 'arg_train.sample_selction'; "
        r"did you mean 'arg_train.sample_selection'",
    ):
        load_config(write(tmp_path, data))


def test_unknown_dotted_key(tmp_path):
    data = {**MINIMAL, "arg_train": {"sample_selection": {"strategy.constant.nbr": 3}}}
    with pytest.raises(ConfigError, match="strategy.constant.nb"):
        load_config(write(tmp_path, data))


def test_wrong_type_names_key_and_file(tmp_path):
    path = write(tmp_path, {**MINIMAL, "arg_train": {"runs": "three"}})
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert "arg_train.runs" in str(info.value)


def test_missing_required_key(tmp_path):
    data = {"chain": {"output_path": "o", "list_tile": ["T31TCJ"], "s2_path": "s"}}
    with pytest.raises(ConfigError, match="chain.ground_truth: required key is missing"):
        load_config(write(tmp_path, data))


def test_overrides_replace_sed_loops(tmp_path):
    path = write(tmp_path, MINIMAL)
    config = load_config(
        path,
        [
            "chain.list_tile=T31TDJ",
            "arg_train.sample_selection.strategy.constant.nb=12",
            "arg_train.deep_learning_parameters.epochs=3",
            "sentinel_2.start_date=20180301",
        ],
    )
    assert config.chain.list_tile == ("T31TDJ",)
    assert config.arg_train.sample_selection.constant_nb == 12
    assert config.arg_train.deep_learning_parameters.epochs == 3
    assert config.sentinel_2.start_date.month == 3


@pytest.mark.parametrize(
    "assignment, message",
    [
        ("chain.output_pth=x", "did you mean 'chain.output_path'"),
        ("chain", "expected section.key=value"),
        ("arg_train.runs=[1", "not valid YAML"),
    ],
)
def test_bad_overrides(tmp_path, assignment, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_config(write(tmp_path, MINIMAL), [assignment])


@pytest.mark.parametrize(
    "section, value, message",
    [
        ({"chain": {**MINIMAL["chain"], "ratio": 1.5}}, None, "chain.ratio"),
        (
            {"chain": {**MINIMAL["chain"], "first_step": "learning", "last_step": "split"}},
            None,
            "comes after",
        ),
        ({**MINIMAL, "sentinel_2": {"keep_bands": ["B2", "B9"]}}, None, "unknown band"),
        ({**MINIMAL, "scheduling": {"scheduler": "fast"}}, None, "scheduling.scheduler"),
        (
            {**MINIMAL, "arg_train": {"sample_selection": {"strategy": "byclass"}}},
            None,
            "strategy.byclass.in",
        ),
    ],
)
def test_bad_values(tmp_path, section, value, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, section))


def test_invalid_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("chain: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(path)


def test_cli_config_show_and_errors(tmp_path):
    path = write(tmp_path, MINIMAL)
    runner = CliRunner()
    result = runner.invoke(cli, ["config", "show", str(path), "--set", "arg_train.runs=2"])
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.output)
    assert shown["arg_train"]["runs"] == 2
    assert shown["chain"]["list_tile"] == ["T31TCJ", "T31TCK"]

    bad = write(tmp_path, {**MINIMAL, "chian": {}}, "bad.yaml")
    result = runner.invoke(cli, ["config", "show", str(bad)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"sitsmap: error: {bad}: unknown key 'chian'; did you mean 'chain'?"
    )
    assert "Traceback" not in result.output


def test_cli_debug_shows_traceback(tmp_path):
    bad = write(tmp_path, {"chian": {}})
    result = CliRunner().invoke(cli, ["--debug", "config", "show", str(bad)])
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError)
