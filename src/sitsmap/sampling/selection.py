"""Sample selection: how many pixels of each class, and which ones.

The equivalent of OTB's SampleSelection, applied to the candidate pixels of
all tiles together (so ``constant`` caps each class over the whole region, as
in the reference scenario's 100 000 pixels per class). Pure functions on arrays.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from sitsmap.config.schema import SampleSelection


def samples_per_class(
    counts: Mapping[int, int], settings: SampleSelection, byclass: Mapping[int, int] | None = None
) -> dict[int, int]:
    """Number of samples to draw from each class.

    Parameters
    ----------
    counts : mapping of int to int
        Candidate pixels per class.
    settings : SampleSelection
        Strategy and its parameters.
    byclass : mapping of int to int, optional
        Requested count per class, for the ``byclass`` strategy.

    Returns
    -------
    dict of int to int
        Samples per class, never more than the candidates of the class.
    """
    strategy = settings.strategy
    if strategy == "all":
        wanted = dict(counts)
    elif strategy == "constant":
        wanted = {code: settings.constant_nb for code in counts}
    elif strategy == "percent":
        wanted = {code: round(settings.percent_p * n) for code, n in counts.items()}
    elif strategy == "smallest":
        smallest = min((n for n in counts.values() if n > 0), default=0)
        wanted = {code: smallest for code in counts}
    elif strategy == "total":
        total = sum(counts.values())
        wanted = {
            code: round(settings.total_v * n / total) if total else 0 for code, n in counts.items()
        }
    elif strategy == "byclass":
        wanted = {code: int((byclass or {}).get(code, 0)) for code in counts}
    else:  # pragma: no cover - the schema forbids other values
        raise ValueError(strategy)
    return {code: min(int(wanted[code]), int(n)) for code, n in counts.items()}


def select_samples(
    labels: np.ndarray, wanted: Mapping[int, int], sampler: str, seed: int
) -> np.ndarray:
    """Choose which candidates become samples.

    Parameters
    ----------
    labels : numpy.ndarray
        Class of every candidate pixel, in a fixed spatial order (tile, row, column).
    wanted : mapping of int to int
        Samples per class (from :func:`samples_per_class`).
    sampler : {"periodic", "random"}
        ``periodic`` takes every k-th candidate of a class in spatial order
        (spreading samples over parcels and tiles); ``random`` draws uniformly.
    seed : int
        Seed of the random sampler and of the periodic sampler's phase.

    Returns
    -------
    numpy.ndarray
        Sorted indexes into ``labels`` of the selected candidates.
    """
    rng = np.random.default_rng(seed)
    chosen = []
    for code in sorted(wanted):
        members = np.flatnonzero(labels == code)
        count = min(int(wanted[code]), members.size)
        if count == 0:
            continue
        if sampler == "periodic":
            step = members.size / count
            offset = rng.uniform(0, step)  # a random phase, like OTB's periodic sampler jitter
            positions = np.minimum(
                (offset + step * np.arange(count)).astype(np.int64), members.size - 1
            )
            chosen.append(members[positions])
        elif sampler == "random":
            chosen.append(rng.choice(members, size=count, replace=False))
        else:
            raise ValueError(f"unknown sampler {sampler!r}")
    return np.sort(np.concatenate(chosen)) if chosen else np.empty(0, dtype=np.int64)
