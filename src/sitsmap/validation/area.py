"""Area-adjusted accuracy and area estimates with 95 % confidence intervals.

Stratified estimators of Olofsson et al. (2014), "Good practices for
estimating area and assessing accuracy of land change", Remote Sensing of
Environment 148:42-57 (their section on analysis, after Olofsson et al. 2013
and Cochran 1977), with the map classes as strata. Validation pixels are
treated as a stratified random sample of the map.

The paper writes the error matrix with rows = map and columns = reference;
sitsmap's confusion matrices are the transpose (rows = reference). Inside this
module ``n[i, j]`` follows the paper (``i`` map class, ``j`` reference class).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["AreaAdjusted", "area_adjusted_accuracy"]

logger = logging.getLogger(__name__)

Z_95 = 1.96
"""Normal quantile of the 95 % intervals, as in the paper."""


@dataclass(frozen=True)
class AreaAdjusted:
    """Stratified (area-weighted) accuracy and area estimates.

    Every ``*_ci`` value is the half-width of a 95 % confidence interval
    (``1.96`` standard errors). Per-class values are dicts keyed by class code.

    Attributes
    ----------
    labels : list of int
        Class codes.
    proportions : numpy.ndarray
        Estimated area proportions ``p_ij = W_i n_ij / n_i.``, in sitsmap's
        layout: rows = reference, columns = map (the transpose of the paper's
        Table 9).
    overall_accuracy, overall_accuracy_ci : float
        ``sum_j p_jj`` and its interval, from
        ``V(O) = sum_i W_i^2 U_i (1 - U_i) / (n_i. - 1)``.
    users_accuracy, users_accuracy_ci : dict of int to float
        ``U_i = p_ii / p_i.`` and its interval, from
        ``V(U_i) = U_i (1 - U_i) / (n_i. - 1)``; NaN for a class without samples.
    producers_accuracy, producers_accuracy_ci : dict of int to float
        ``P_j = p_jj / p_.j`` and its interval (variance in
        :meth:`_Strata.producers_accuracy`); NaN for a class estimated absent.
    mapped_area : dict of int to float
        Mapped area of each class (ha when ``area_unit`` is ``"ha"``).
    area, area_ci : dict of int to float
        Error-adjusted area ``A * p_.j`` of each class and its interval, from
        ``S(p_.j) = sqrt(sum_i W_i^2 (n_ij/n_i.)(1 - n_ij/n_i.) / (n_i. - 1))``.
    area_unit : str
        ``"ha"``, or ``"mapped_area units"`` when no pixel area was given.
    """

    labels: list[int]
    proportions: np.ndarray
    overall_accuracy: float
    overall_accuracy_ci: float
    users_accuracy: dict[int, float]
    users_accuracy_ci: dict[int, float]
    producers_accuracy: dict[int, float]
    producers_accuracy_ci: dict[int, float]
    mapped_area: dict[int, float]
    area: dict[int, float]
    area_ci: dict[int, float]
    area_unit: str

    def to_dict(self) -> dict:
        """Return a JSON-friendly dict (NaN written as ``None``)."""
        per_class = {
            str(code): {
                "users_accuracy": _pair(self.users_accuracy[code], self.users_accuracy_ci[code]),
                "producers_accuracy": _pair(
                    self.producers_accuracy[code], self.producers_accuracy_ci[code]
                ),
                "mapped_area": _number(self.mapped_area[code]),
                "adjusted_area": _pair(self.area[code], self.area_ci[code]),
            }
            for code in self.labels
        }
        return {
            "method": "Olofsson et al. 2014, stratified estimators, strata = map classes",
            "labels": list(self.labels),
            "area_unit": self.area_unit,
            "overall_accuracy": _pair(self.overall_accuracy, self.overall_accuracy_ci),
            "per_class": per_class,
            "proportions": [[_number(v) for v in row] for row in self.proportions.tolist()],
            "proportions_layout": "rows = reference, columns = map",
        }


def _number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _pair(estimate: float, half_width: float) -> dict[str, float | None]:
    return {"estimate": _number(estimate), "ci95": _number(half_width)}


def area_adjusted_accuracy(
    confusion: np.ndarray,
    mapped_area: np.ndarray,
    labels: Sequence[int],
    pixel_area_ha: float | None = None,
) -> AreaAdjusted:
    """Estimate accuracy and class areas, weighting samples by mapped area.

    Parameters
    ----------
    confusion : numpy.ndarray
        Sample counts, rows = reference, columns = map (sitsmap's convention).
    mapped_area : numpy.ndarray
        Mapped area of each class (pixel counts, or any area unit), in
        ``labels`` order; it defines the strata weights ``W_i``.
    labels : sequence of int
        Class codes of the rows/columns.
    pixel_area_ha : float, optional
        Area of one pixel in hectares; when given, ``mapped_area`` is read as
        pixel counts and areas are reported in ha.

    Returns
    -------
    AreaAdjusted

    Notes
    -----
    The estimators assume the validation pixels are a stratified random
    sample of the map. Pixels taken from whole validation polygons are
    spatially clustered, so the intervals are then too narrow (the estimates
    themselves stay consistent).
    """
    counts = np.asarray(confusion, dtype=np.float64).T  # paper layout: rows = map
    codes = [int(code) for code in labels]
    mapped = np.asarray(mapped_area, dtype=np.float64)
    if counts.shape != (len(codes), len(codes)) or mapped.shape != (len(codes),):
        raise ValueError(
            f"confusion {counts.shape} and mapped_area {mapped.shape} "
            f"do not fit {len(codes)} labels"
        )
    scale = 1.0 if pixel_area_ha is None else float(pixel_area_ha)
    mapped = mapped * scale
    stratum = _Strata(counts, mapped)
    oa, oa_se = stratum.overall_accuracy()
    users, users_se = stratum.users_accuracy()
    producers, producers_se = stratum.producers_accuracy()
    area, area_se = stratum.areas()
    as_dict = _keyed(codes)
    return AreaAdjusted(
        labels=codes,
        proportions=stratum.proportions.T.copy(),
        overall_accuracy=oa,
        overall_accuracy_ci=Z_95 * oa_se,
        users_accuracy=as_dict(users),
        users_accuracy_ci=as_dict(Z_95 * users_se),
        producers_accuracy=as_dict(producers),
        producers_accuracy_ci=as_dict(Z_95 * producers_se),
        mapped_area=as_dict(mapped),
        area=as_dict(area),
        area_ci=as_dict(Z_95 * area_se),
        area_unit="ha" if pixel_area_ha is not None else "mapped_area units",
    )


def _keyed(codes: list[int]):
    def as_dict(values: np.ndarray) -> dict[int, float]:
        return dict(zip(codes, np.asarray(values, dtype=np.float64).tolist(), strict=True))

    return as_dict


class _Strata:
    """The paper's quantities for one error matrix (rows = map ``i``, cols = reference ``j``)."""

    def __init__(self, counts: np.ndarray, mapped: np.ndarray) -> None:
        self.counts = counts
        self.mapped = mapped  # N_i. (or A_m,i): mapped area of each stratum
        self.total = float(mapped.sum())
        if self.total <= 0:
            raise ValueError("the mapped areas sum to zero: no stratum weights")
        self.weights = mapped / self.total  # W_i
        self.sampled = counts.sum(axis=1)  # n_i.
        empty = (self.sampled == 0) & (mapped > 0)
        if empty.any():
            logger.warning(
                "%d mapped classes have no validation sample; their mapped area is left out "
                "of the adjusted areas",
                int(empty.sum()),
            )
        self.row_share = _ratio(counts, self.sampled[:, None])  # n_ij / n_i.
        self.proportions = self.weights[:, None] * self.row_share  # p_ij
        # n_i. - 1 in the variance denominators; a stratum of one sample adds 0.
        self.dof = np.where(self.sampled > 1, self.sampled - 1, np.inf)

    def overall_accuracy(self) -> tuple[float, float]:
        """Return the overall accuracy ``sum_j p_jj`` and its standard error."""
        users = np.nan_to_num(np.diag(self.row_share))
        variance = np.sum(self.weights**2 * users * (1 - users) / self.dof)
        return float(np.trace(self.proportions)), math.sqrt(variance)

    def users_accuracy(self) -> tuple[np.ndarray, np.ndarray]:
        """Return user's accuracies ``U_i = p_ii / p_i.`` and their standard errors."""
        users = np.where(self.sampled > 0, np.diag(self.row_share), np.nan)
        variance = users * (1 - users) / self.dof
        return users, np.sqrt(variance)

    def producers_accuracy(self) -> tuple[np.ndarray, np.ndarray]:
        """Return producer's accuracies ``P_j = p_jj / p_.j`` and their standard errors.

        ``V(P_j) = [N_j.^2 (1-P_j)^2 U_j (1-U_j) / (n_j.-1)
        + P_j^2 sum_{i != j} N_i.^2 (n_ij/n_i.) (1 - n_ij/n_i.) / (n_i.-1)] / N_.j^2``
        with ``N_.j = sum_i N_i. n_ij / n_i.`` the estimated reference total.
        """
        column = self.proportions.sum(axis=0)  # p_.j
        with np.errstate(invalid="ignore", divide="ignore"):
            producers = np.where(column > 0, np.diag(self.proportions) / column, np.nan)
        users = np.nan_to_num(np.diag(self.row_share))
        reference_total = self.mapped @ self.row_share  # N_.j
        own = self.mapped**2 * (1 - producers) ** 2 * users * (1 - users) / self.dof
        cell = (self.mapped**2 / self.dof)[:, None] * self.row_share * (1 - self.row_share)
        others = cell.sum(axis=0) - np.diag(cell)
        with np.errstate(invalid="ignore", divide="ignore"):
            variance = (own + producers**2 * others) / reference_total**2
        return producers, np.sqrt(variance)

    def areas(self) -> tuple[np.ndarray, np.ndarray]:
        """Return error-adjusted areas ``A_j = A * p_.j`` and their standard errors."""
        share = self.row_share
        variance = np.sum((self.weights**2 / self.dof)[:, None] * share * (1 - share), axis=0)
        return self.total * self.proportions.sum(axis=0), self.total * np.sqrt(variance)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros(np.broadcast(numerator, denominator).shape)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out
