"""``sitsmap demo``: the reference scenario, scaled down, on a generated world.

The reference scenario (iota2's deep-learning release) maps 4 Sentinel-2
tiles with an MLP (481→240→69→69→23, Adam, batch 4096, 200 epochs,
periodic sampler capped at 100 000 pixels per class, probability maps on).
The demo keeps its shape — the same 4 tiles, the same 10-day grid of 481
features, the same network, sampler and outputs — on 256² tiles, with fewer
samples and epochs and a larger learning rate so that it finishes in minutes.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from pathlib import Path

from sitsmap.config import load_config
from sitsmap.pipeline.context import RunContext
from sitsmap.pipeline.run import run_chain
from sitsmap.synth import generate_world

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


def run_demo(
    out_dir: Path,
    size: int = 256,
    scheduler: str = "processes",
    workers: int = 2,
    overrides: Sequence[str] = (),
    seed: int = 0,
) -> RunContext:
    """Generate the world in ``out_dir`` (unless already there) and run the chain on it.

    Returns
    -------
    RunContext
        The run; its layout says where the map and RESULTS.txt are.
    """
    out_dir = Path(out_dir)
    config_path = out_dir / "config.yaml"
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
    config = load_config(config_path, (*DEMO_OVERRIDES, *overrides))
    return run_chain(config, scheduler=scheduler, workers=workers, config_path=config_path)
