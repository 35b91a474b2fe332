"""mlp_vs_bare_loop: an epoch of sitsmap's MLP trainer against a bare PyTorch loop.

Both train the reference network (481 -> 240 -> 69 -> 69 -> 23, Adam, batch 4096) on
the same standardised float32 tensors, already in memory, on the same CPU threads:

* trainer: ``DeepClassifier(...).fit(X, y, groups)``; its epoch time is the history's
  ``seconds``: shuffle, every mini-batch step, and its per-epoch monitoring (a forward
  pass over the 20 % monitoring polygons giving loss, OA, kappa and F-score) plus the
  copy of the best weights;
* bare loop: ``randperm``, then for each batch ``zero_grad``, forward, loss, backward,
  ``step`` over the trainer's own learning part (same samples per epoch), no loader, no
  metrics, one ``.item()`` per epoch.

ratio = trainer epoch / bare epoch (fastest epoch of each, the first epoch of a run left
out, runs interleaved). Goal <= 1.15. The details also give the ratio against a bare
loop that adds the least monitoring any model selection needs (one forward pass and an
argmax over the monitoring part), samples per second, and the reference training
(1.78 M samples x 200 epochs) extrapolated to hours on this machine.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

import common
from sitsmap.learning.deep.models import build_network
from sitsmap.learning.deep.trainer import DeepClassifier, monitoring_split

NAME, GOAL = "mlp_vs_bare_loop", 1.15
N_SAMPLES, N_FEATURES, N_CLASSES, BATCH = 100_000, 481, 23, 4096
POLYGON_PIXELS = 50
EPOCHS, ROUNDS = 6, 3
LEARNING_RATE = 1e-3
REFERENCE_SAMPLES, REFERENCE_EPOCHS = 1_780_000, 200


def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random features, labels and polygon ids (timing does not depend on the values)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N_SAMPLES, N_FEATURES), dtype=np.float32)
    y = rng.integers(0, N_CLASSES, N_SAMPLES)
    return X, y, np.arange(N_SAMPLES) // POLYGON_PIXELS


def trainer_epochs(X: np.ndarray, y: np.ndarray, groups: np.ndarray) -> list[float]:
    """Per-epoch seconds of the trainer (first epoch left out)."""
    model = DeepClassifier(
        epochs=EPOCHS,
        learning_rates=(LEARNING_RATE,),
        batch_sizes=(BATCH,),
        seed=0,
        device="cpu",
    ).fit(X, y, groups)
    return model.history_["seconds"].iloc[1:].tolist()


def bare_epochs(
    X: torch.Tensor, y: torch.Tensor, monitor: torch.Tensor | None = None
) -> list[float]:
    """Per-epoch seconds of the bare loop (first epoch left out), optionally + a forward pass."""
    torch.manual_seed(0)
    model = build_network("MLPClassifier", N_FEATURES, N_CLASSES)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    loss_function = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(0)
    seconds = []
    for _ in range(EPOCHS):
        began = time.perf_counter()
        model.train()
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), BATCH):
            index = order[start : start + BATCH]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_function(model(X[index]), y[index])
            loss.backward()
            optimizer.step()
        loss.item()
        if monitor is not None:
            model.eval()
            with torch.inference_mode():
                model(monitor).argmax(dim=1)
        seconds.append(time.perf_counter() - began)
    return seconds[1:]


def main() -> None:
    """Measure and report."""
    X, y, groups = data()
    learn, monitor = monitoring_split(y, groups, 0.2, 0)
    mean, std = X[learn].mean(axis=0), X[learn].std(axis=0)
    X_learn = torch.from_numpy((X[learn] - mean) / std)
    X_monitor = torch.from_numpy((X[monitor] - mean) / std)
    y_learn = torch.from_numpy(y[learn])
    times: dict[str, list[float]] = {"trainer": [], "bare": [], "bare_with_forward": []}
    for round_ in range(ROUNDS):
        times["trainer"] += trainer_epochs(X, y, groups)
        times["bare"] += bare_epochs(X_learn, y_learn)
        times["bare_with_forward"] += bare_epochs(X_learn, y_learn, X_monitor)
        common.log(
            f"round {round_ + 1}: "
            + ", ".join(f"{k} {np.median(v):.2f} s/epoch" for k, v in times.items())
        )
    best = {key: min(values) for key, values in times.items()}
    ratio = best["trainer"] / best["bare"]
    rate = len(learn) / best["trainer"]
    per_sample = best["trainer"] / N_SAMPLES
    hours = per_sample * REFERENCE_SAMPLES * REFERENCE_EPOCHS / 3600
    details = {
        "headline": (
            f"{best['trainer']:.2f} vs {best['bare']:.2f} s/epoch ({len(learn)} learning "
            f"samples); vs bare + monitoring forward "
            f"{best['trainer'] / best['bare_with_forward']:.2f}; "
            f"{rate:,.0f} samples/s; reference training ~{hours:.1f} h here"
        ),
        "samples": N_SAMPLES,
        "learning_samples": int(len(learn)),
        "monitoring_samples": int(len(monitor)),
        "batch_size": BATCH,
        "torch_threads": torch.get_num_threads(),
        "epochs_per_run": EPOCHS,
        "rounds": ROUNDS,
        "seconds_per_epoch": {k: [round(s, 3) for s in v] for k, v in times.items()},
        "ratio_median": round(np.median(times["trainer"]) / np.median(times["bare"]), 3),
        "ratio_vs_bare_with_monitoring_forward": round(
            best["trainer"] / best["bare_with_forward"], 3
        ),
        "learning_samples_per_second": round(rate),
        "reference_training_hours": round(hours, 2),
        "reference_training": f"{REFERENCE_SAMPLES:,} samples x {REFERENCE_EPOCHS} epochs",
    }
    common.report(NAME, ratio, GOAL, False, details)


if __name__ == "__main__":
    main()
