"""``sitsmap demo``: the reference scenario, scaled down, on a generated world.

The reference scenario (iota2's deep-learning release) maps 4 Sentinel-2
tiles with an MLP (481→240→69→69→23, Adam, batch 4096, 200 epochs,
periodic sampler capped at 100 000 pixels per class, probability maps on).
The demo keeps its shape — the same 4 tiles, the same 10-day grid of 481
features, the same network, sampler and outputs — on 256² tiles, with fewer
samples and epochs and a larger learning rate so that it finishes in minutes.

``regression=True`` maps the same world's ``biomass`` instead (t/ha, see
:mod:`sitsmap.synth.target`) with its ``config_regression.yaml``: the same
MLP with a regression head, one model per eco-region, into
``output_regression``. An ideal model would reach a polygon
R² of about :data:`~sitsmap.synth.target.EXPLAINED_SHARE` (0.8): the rest of
the target's variance is measurement error.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from pathlib import Path

from sitsmap.config import load_config
from sitsmap.errors import ConfigError
from sitsmap.pipeline.context import RunContext
from sitsmap.pipeline.run import run_chain
from sitsmap.synth import generate_world
from sitsmap.synth.target import EXPLAINED_SHARE, TARGET_FIELD
from sitsmap.synth.world import CONFIG_FILE, REGRESSION_CONFIG_FILE

LOGGER = logging.getLogger(__name__)

DEMO_TILES = ("T31TCJ", "T31TCK", "T31TDJ", "T31TDK")

DEMO_REGIONS = 2
"""Eco-regions of the demo world: one model each, blended across a 500 m border band."""

DEMO_OVERRIDES = (
    "arg_train.sample_selection={sampler: periodic, strategy: constant, "
    "strategy.constant.nb: 1500}",
    "arg_train.deep_learning_parameters={dl_name: MLPClassifier, epochs: 60, "
    "model_selection_criterion: fscore, "
    "hyperparameters_solver: {learning_rate: [0.001], batch_size: [512]}}",
    "arg_classification.enable_probability_map=true",
    "python_data_managing.number_of_chunks=4",
    "chain.region_border_width=500",
    "post_processing.vectorisation.enabled=true",
)
"""What the demo changes in the generated world's configuration."""

REGRESSION_DEMO_OVERRIDES = (
    "arg_train.sample_selection={sampler: periodic, strategy: constant, "
    "strategy.constant.nb: 1500}",
    "arg_train.deep_learning_parameters={dl_name: MLPClassifier, epochs: 60, "
    "model_selection_criterion: rmse, "
    "hyperparameters_solver: {learning_rate: [0.001], batch_size: [512]}}",
    "python_data_managing.number_of_chunks=4",
    "chain.region_border_width=500",
)
"""What the regression demo changes in the world's ``config_regression.yaml``.

The classification demo's network with a regression head, kept on the
lowest monitoring RMSE; the samples are per quantile bin of the target
(``arg_train.regression_bins``). Without the network the configuration's
random forest learns (and writes an uncertainty map), but scikit-learn's
regression forest tries every feature at each split: about 20 minutes per
model of 12 000 samples on one loaded core, against seconds for the network.
"""

IDEAL_MODEL_NOTE = (
    f"ideal model:     polygon R² about {EXPLAINED_SHARE:.2f} (the other "
    f"{1 - EXPLAINED_SHARE:.0%} of {TARGET_FIELD}'s variance is measurement error)"
)
"""What the regression demo's scores compare with (:mod:`sitsmap.synth.target`)."""


def run_demo(
    out_dir: Path,
    size: int = 256,
    scheduler: str = "processes",
    workers: int = 2,
    overrides: Sequence[str] = (),
    seed: int = 0,
    regression: bool = False,
) -> RunContext:
    """Generate the world in ``out_dir`` (unless already there) and run the chain on it.

    Parameters
    ----------
    out_dir : Path
        The world's folder; the run writes into its ``output`` (``output_regression``).
    size : int
        Tile side in pixels.
    scheduler, workers : str, int
        Where the chain's tasks run.
    overrides : sequence of str
        ``section.key=value`` applied after the demo's own.
    seed : int
        World seed (used when the world is generated).
    regression : bool
        Map the world's ``biomass`` by regression (``config_regression.yaml``)
        instead of its land cover.

    Returns
    -------
    RunContext
        The run; its layout says where the map and RESULTS.txt are.

    Raises
    ------
    ConfigError
        With ``regression``, if the world holds no regression configuration
        even once regenerated (this sitsmap's configuration refuses it).
    """
    out_dir = Path(out_dir)
    config_path = out_dir / (REGRESSION_CONFIG_FILE if regression else CONFIG_FILE)
    if not config_path.exists():
        generate_world(
            out_dir,
            DEMO_TILES,
            size=size,
            start=dt.date(2018, 1, 1),
            end=dt.date(2018, 12, 31),
            seed=seed,
            regions=DEMO_REGIONS,
        )
    else:
        LOGGER.info("reusing the world in %s", out_dir)
    if regression and not config_path.exists():
        raise ConfigError(
            "the generated world holds no regression configuration: this sitsmap's "
            "configuration refuses it (see the warning above)",
            config_path,
        )
    demo_overrides = REGRESSION_DEMO_OVERRIDES if regression else DEMO_OVERRIDES
    config = load_config(config_path, (*demo_overrides, *overrides))
    return run_chain(config, scheduler=scheduler, workers=workers, config_path=config_path)
