"""The vector map: polygons of the regularised class map, built window by window.

The OSO-like vector product of iota2: one polygon per 4-connected component of
equal class over the whole raster, with statistics of the raw map, the
confidence and the class probability under it. The map is given window by
window (non-overlapping windows in row-major order); only the pieces'
polygons and statistics, the links between pieces across window borders and
one line of border labels along each axis are kept, never a whole window.

All geometry work is done in pixel coordinates (column, row), where every
vertex is an integer, so that joining pieces and noding shared edges is exact;
the polygons are moved into the map's CRS at the very end.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import affine
import geopandas as gpd
import numpy as np
import rasterio.features
import shapely
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["VectorMapBuilder"]

NODATA_SCORE = 255
"""Nodata of the confidence and class-probability maps (valid values are 0-100)."""

_ORDER_ERROR = "windows overlap or are not added in row-major order"


class _Border:
    """The last pixel added along each column (or row): its piece, class and position.

    The arrays grow on demand, so the map's size need not be known.
    """

    def __init__(self) -> None:
        self.piece = np.empty(0, np.int64)
        self.code = np.empty(0, np.int64)
        self.at = np.empty(0, np.int64)

    def _grow(self, stop: int) -> None:
        """Extend the arrays to ``stop`` lines, unseen lines marked -1."""
        extra = stop - self.piece.size
        if extra > 0:
            self.piece, self.code, self.at = (
                np.concatenate([line, np.full(extra, -1, np.int64)])
                for line in (self.piece, self.code, self.at)
            )

    def before(self, start: int, length: int, at: int) -> tuple[np.ndarray, np.ndarray]:
        """Pieces and classes just before position ``at`` on lines ``start:start+length``.

        Returns
        -------
        piece, code : np.ndarray
            The piece id (-1 where the line has no added pixel at ``at - 1``) and its class.

        Raises
        ------
        ValueError
            If a pixel at or after ``at`` was already added on one of these lines.
        """
        self._grow(start + length)
        lines = slice(start, start + length)
        if np.any(self.at[lines] >= at):
            raise ValueError(_ORDER_ERROR)
        touching = self.at[lines] == at - 1
        return np.where(touching, self.piece[lines], -1), self.code[lines]

    def update(self, start: int, piece: np.ndarray, code: np.ndarray, at: int) -> None:
        """Record the pieces and classes now last on lines ``start:start+len(piece)``."""
        lines = slice(start, start + piece.size)
        self.piece[lines], self.code[lines], self.at[lines] = piece, code, at


class VectorMapBuilder:
    """Polygons of a class map given window by window, with per-polygon statistics.

    Parameters
    ----------
    transform : affine.Affine
        The whole map's geotransform.
    crs : object
        The map's CRS (anything ``geopandas`` accepts), given to the polygons.
    codes : sequence of int
        The nomenclature's class codes: one ``prop_<code>`` column each.
    nodata : int, default 0
        The class maps' nodata; its pixels belong to no polygon.

    Notes
    -----
    Windows must not overlap and each must come after its top and left
    neighbours (row-major order does). Pieces of one component cut by a window
    border are linked through the border labels and joined at the end.
    """

    def __init__(
        self, transform: affine.Affine, crs, codes: Sequence[int], nodata: int = 0
    ) -> None:
        self.transform = transform
        self.crs = crs
        self.codes = np.asarray(codes, dtype=np.int64).ravel()
        if np.unique(self.codes).size != self.codes.size:
            raise ValueError("the class codes must be unique")
        self.nodata = nodata
        self._geometries: list[np.ndarray] = []  # per window, per piece, in pixel coordinates
        self._stats: list[dict[str, np.ndarray]] = []  # per window, one row per piece
        self._links: list[np.ndarray] = []  # pairs of pieces joined across a border
        self._n_pieces = 0
        self._bottom = _Border()  # per column: the last added row
        self._right = _Border()  # per row: the last added column
        self._layers: tuple[bool, bool, bool] | None = None  # raw, confidence, probability

    def add_window(
        self,
        row_off: int,
        col_off: int,
        classes: np.ndarray,
        raw: np.ndarray | None = None,
        confidence: np.ndarray | None = None,
        class_probability: np.ndarray | None = None,
    ) -> None:
        """Add one window of the regularised map and, optionally, of the maps under it.

        Parameters
        ----------
        row_off, col_off : int
            The window's first row and column in the whole map.
        classes : np.ndarray
            The regularised class map's window (2-D integers, ``nodata`` outside the map).
        raw : np.ndarray, optional
            The raw (unregularised) class map over the same window.
        confidence : np.ndarray, optional
            The confidence, 0-100 (255 = nodata), over the same window.
        class_probability : np.ndarray, optional
            The probability of each pixel's regularised class, 0-100 (255 = nodata).

        Raises
        ------
        ValueError
            If the arrays' shapes differ, the optional layers differ from the first
            window's, or the window overlaps (or comes before) an added one.
        """
        classes = np.asarray(classes)
        layers = _check_window(classes, raw, confidence, class_probability)
        if self._layers not in (None, layers):
            raise ValueError("every window must give the same optional layers as the first")
        labels, piece_code = _label_pieces(classes, self.nodata)
        self._link(row_off, col_off, classes, labels)
        self._layers = layers
        self._geometries.append(_polygonise(labels, piece_code.size, row_off, col_off))
        self._stats.append(
            _piece_stats(labels, piece_code, self.codes, raw, confidence, class_probability)
        )
        self._n_pieces += piece_code.size

    def _link(self, row_off: int, col_off: int, classes: np.ndarray, labels: np.ndarray) -> None:
        """Link the window's border pieces to the equal-class pieces above and to the left."""
        height, width = classes.shape
        above, above_code = self._bottom.before(col_off, width, row_off)
        left, left_code = self._right.before(row_off, height, col_off)
        pairs = [
            _touching_pairs(self._piece_ids(labels[0]), classes[0], above, above_code),
            _touching_pairs(self._piece_ids(labels[:, 0]), classes[:, 0], left, left_code),
        ]
        self._links.append(np.unique(np.concatenate(pairs), axis=0))
        self._bottom.update(col_off, self._piece_ids(labels[-1]), classes[-1], row_off + height - 1)
        self._right.update(
            row_off, self._piece_ids(labels[:, -1]), classes[:, -1], col_off + width - 1
        )

    def _piece_ids(self, labels: np.ndarray) -> np.ndarray:
        """Global piece ids of a line of window labels (-1 on nodata)."""
        return np.where(labels > 0, labels.astype(np.int64) + self._n_pieces - 1, -1)

    def polygons(
        self, simplify_tolerance: float = 0.0, names: Mapping[int, str] | None = None
    ) -> gpd.GeoDataFrame:
        """One polygon per 4-connected component of equal class, with its statistics.

        Parameters
        ----------
        simplify_tolerance : float, default 0
            In CRS units; 0 keeps the exact pixel outlines. Otherwise the polygons are
            simplified as a coverage (:func:`shapely.coverage_simplify`, GEOS's
            Visvalingam-Whyatt coverage simplifier): each edge shared by two polygons
            is simplified once, for both, so neighbours keep sharing it exactly (no
            gap, no overlap) and every polygon stays valid; the outer edges (the map's
            border and nodata) are simplified too. Simplifying each polygon on its own
            (Douglas-Peucker) would move the two copies of a shared edge differently.
            The tolerance is roughly the square root of the largest triangle area removed.
        names : mapping of int to str, optional
            Class names by code; ``"class <code>"`` otherwise.

        Returns
        -------
        geopandas.GeoDataFrame
            In the builder's CRS, one row per polygon, ordered by each polygon's first
            pixel in row-major order, with the columns ``class``, ``class_name``,
            ``pixels``, ``area_ha`` (pixels x pixel area, exact whatever the
            simplification); when the raw map was given, ``raw_majority`` (its most
            frequent code, ``nodata`` where none) and ``prop_<code>`` for each code
            (fraction of the polygon's pixels, 0-1); when given, ``confidence_mean`` and
            ``probability_mean`` (0-100, mean over the pixels that are not 255, NaN if
            none); then ``geometry``.
        """
        if simplify_tolerance < 0:
            raise ValueError("simplify_tolerance must be >= 0")
        if not self._n_pieces:
            return gpd.GeoDataFrame(self._columns({}, names), geometry=[], crs=self.crs)
        n_polygons, component = self._components()
        geometries = _join_pieces(np.concatenate(self._geometries), component, n_polygons)
        order = _row_major_order(geometries)
        stats = {
            key: _sum_by(component, np.concatenate([s[key] for s in self._stats]), n_polygons)
            for key in self._stats[0]
            if key != "class"
        }
        stats["class"] = np.zeros(n_polygons, np.int64)
        stats["class"][component] = np.concatenate([s["class"] for s in self._stats])
        if simplify_tolerance > 0:
            pixel_size = abs(self.transform.determinant) ** 0.5
            geometries = _simplify_coverage(geometries, simplify_tolerance / pixel_size)
        geometries = _to_map(geometries, self.transform)
        columns = self._columns({key: value[order] for key, value in stats.items()}, names)
        return gpd.GeoDataFrame(columns, geometry=geometries[order], crs=self.crs)

    def _components(self) -> tuple[int, np.ndarray]:
        """The polygon of each piece: connected components of the border links."""
        # scipy's graph components stand for the union-find: one vectorised call at the
        # end instead of a Python find/union per linked pair.
        links = np.concatenate(self._links)
        graph = coo_matrix(
            (np.ones(len(links), np.int8), (links[:, 0], links[:, 1])),
            shape=(self._n_pieces, self._n_pieces),
        )
        return connected_components(graph, directed=False)

    def _columns(self, stats: dict[str, np.ndarray], names: Mapping[int, str] | None) -> dict:
        """The attribute columns, from the statistics summed per polygon."""
        codes = stats.get("class", np.empty(0, np.int64))
        pixels = stats.get("pixels", np.empty(0, np.int64))
        names = names or {}
        columns = {
            "class": codes,
            "class_name": [names.get(int(code), f"class {code}") for code in codes],
            "pixels": pixels,
            "area_ha": pixels * abs(self.transform.determinant) / 10_000,
        }
        raw, confidence, probability = self._layers or (False, False, False)
        if raw:
            counts = stats.get("raw", np.zeros((0, self.codes.size + 1), np.int64))[:, :-1]
            majority = self.codes[np.argmax(counts, axis=1)] if self.codes.size else codes * 0
            columns["raw_majority"] = np.where(counts.sum(axis=1) > 0, majority, self.nodata)
            for index, code in enumerate(self.codes):
                columns[f"prop_{code}"] = counts[:, index] / pixels
        for given, name, key in (
            (confidence, "confidence_mean", "confidence"),
            (probability, "probability_mean", "probability"),
        ):
            if given:
                columns[name] = _mean(stats.get(f"{key}_sum"), stats.get(f"{key}_count"))
        return columns


def _check_window(classes: np.ndarray, *layers: np.ndarray | None) -> tuple[bool, bool, bool]:
    """Check a window's arrays; return which optional layers are given."""
    if classes.ndim != 2 or not np.issubdtype(classes.dtype, np.integer):
        raise ValueError(
            f"classes must be a 2-D integer array, not {classes.dtype} {classes.shape}"
        )
    if 0 in classes.shape:
        raise ValueError("empty window")
    for layer in layers:
        if layer is not None and np.shape(layer) != classes.shape:
            raise ValueError(f"layer shape {np.shape(layer)} differs from classes {classes.shape}")
    return tuple(layer is not None for layer in layers)


def _label_pieces(classes: np.ndarray, nodata: int) -> tuple[np.ndarray, np.ndarray]:
    """Label the 4-connected pieces of equal class in a window.

    Returns
    -------
    labels : np.ndarray
        int32, 1..n, 0 on nodata.
    piece_code : np.ndarray
        The class of each piece (int64, n).
    """
    labels = np.zeros(classes.shape, np.int32)
    piece_code = []
    for code in np.unique(classes):
        if code == nodata:
            continue
        mask = classes == code
        pieces, count = ndimage.label(mask)  # default structure: 4-connectivity
        labels[mask] = pieces[mask] + len(piece_code)
        piece_code.extend([code] * count)
    return labels, np.asarray(piece_code, np.int64)


def _touching_pairs(
    piece: np.ndarray, code: np.ndarray, neighbour: np.ndarray, neighbour_code: np.ndarray
) -> np.ndarray:
    """Pairs (piece, neighbour) of equal class along a border line, (k, 2) int64."""
    same = (piece >= 0) & (neighbour >= 0) & (code == neighbour_code)
    return np.column_stack([piece[same], neighbour[same]])


def _polygonise(labels: np.ndarray, count: int, row_off: int, col_off: int) -> np.ndarray:
    """One polygon per label, in the whole map's pixel coordinates (column, row)."""
    rings, ring_counts, values = [], [], []
    transform = affine.Affine.translation(col_off, row_off)
    for geojson, value in rasterio.features.shapes(
        labels, mask=labels > 0, connectivity=4, transform=transform
    ):
        rings.extend(geojson["coordinates"])
        ring_counts.append(len(geojson["coordinates"]))
        values.append(value)
    # one vectorised construction: shapely.geometry.shape per polygon was most of the time
    coords = np.fromiter(itertools.chain.from_iterable(itertools.chain(*rings)), np.float64)
    ring_offsets = np.cumsum([0, *map(len, rings)])
    polygon_offsets = np.cumsum([0, *ring_counts])
    polygons = shapely.from_ragged_array(
        shapely.GeometryType.POLYGON, coords.reshape(-1, 2), (ring_offsets, polygon_offsets)
    )
    geometries = np.empty(count, dtype=object)
    geometries[np.asarray(values, np.int64) - 1] = polygons
    return geometries


def _piece_stats(
    labels: np.ndarray,
    piece_code: np.ndarray,
    codes: np.ndarray,
    raw: np.ndarray | None,
    confidence: np.ndarray | None,
    probability: np.ndarray | None,
) -> dict[str, np.ndarray]:
    """Per piece: class, pixel count, raw class counts and score sums (one row per label)."""
    flat = labels.ravel().astype(np.int64)
    size = piece_code.size + 1
    stats = {"class": piece_code, "pixels": np.bincount(flat, minlength=size)[1:]}
    if raw is not None:
        index = _code_index(np.asarray(raw).ravel(), codes)  # codes.size: not a code
        width = codes.size + 1
        counts = np.bincount(flat * width + index, minlength=size * width)
        stats["raw"] = counts.reshape(size, width)[1:]
    for key, scores in (("confidence", confidence), ("probability", probability)):
        if scores is not None:
            scores = np.asarray(scores).ravel()
            valid = scores != NODATA_SCORE
            weights = scores[valid].astype(np.float64)
            stats[f"{key}_sum"] = np.bincount(flat[valid], weights, minlength=size)[1:]
            stats[f"{key}_count"] = np.bincount(flat[valid], minlength=size)[1:]
    return stats


def _code_index(values: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Position of each value in ``codes``; ``codes.size`` for values that are not codes."""
    if not codes.size:
        return np.zeros(values.shape, np.int64)
    order = np.argsort(codes)
    position = np.minimum(np.searchsorted(codes[order], values), codes.size - 1)
    return np.where(codes[order][position] == values, order[position], codes.size)


def _sum_by(component: np.ndarray, values: np.ndarray, count: int) -> np.ndarray:
    """Sum per-piece values (1-D or rows of a 2-D array) per component."""
    total = np.zeros((count, *values.shape[1:]), values.dtype)
    np.add.at(total, component, values)
    return total


def _mean(total: np.ndarray | None, count: np.ndarray | None) -> np.ndarray:
    """``total / count``, NaN where the count is 0."""
    if total is None or count is None:
        return np.empty(0)
    return np.divide(total, count, out=np.full(total.shape, np.nan), where=count > 0)


def _join_pieces(pieces: np.ndarray, component: np.ndarray, count: int) -> np.ndarray:
    """One polygon per component: the union of its pieces (exact: integer vertices)."""
    sizes = np.bincount(component, minlength=count)
    joined = np.empty(count, dtype=object)
    alone = sizes[component] == 1
    joined[component[alone]] = pieces[alone]
    cut = np.flatnonzero(~alone)
    cut = cut[np.argsort(component[cut], kind="stable")]
    for group in np.split(cut, np.flatnonzero(np.diff(component[cut])) + 1):
        if group.size:
            joined[component[group[0]]] = shapely.union_all(pieces[group])
    # the union keeps a vertex wherever a window border crossed a straight edge;
    # a zero tolerance removes exactly these collinear vertices, nothing else
    several = sizes > 1
    joined[several] = shapely.simplify(joined[several], 0.0)
    return joined


def _row_major_order(geometries: np.ndarray) -> np.ndarray:
    """Order of pixel-coordinate polygons by their first pixel in row-major order.

    A polygon's first pixel's top-left corner is its leftmost vertex on its top row.
    """
    coords, owner = shapely.get_coordinates(geometries, return_index=True)
    top = shapely.bounds(geometries)[:, 1]
    on_top = coords[:, 1] == top[owner]
    left = np.full(geometries.size, np.inf)
    np.minimum.at(left, owner[on_top], coords[on_top, 0])
    return np.lexsort((left, top))


def _simplify_coverage(geometries: np.ndarray, tolerance: float) -> np.ndarray:
    """Simplify pixel-coordinate polygons as a coverage (shared edges simplified once).

    GEOS needs the coverage edge-matched: the same vertices on both sides of a
    shared edge. A pixel outline has vertices only where it turns, so a vertex of
    a neighbour where three polygons meet can lie mid-edge; adding a vertex at every
    pixel corner (exact on integer coordinates) matches them. Visvalingam-Whyatt
    then removes the collinear ones first.
    """
    dense = shapely.segmentize(geometries, 1.0)
    simplified = shapely.coverage_simplify(dense, tolerance)
    broken = ~shapely.is_valid(simplified) | shapely.is_empty(simplified)
    if np.any(broken):  # not expected from GEOS; never return an invalid polygon
        raise RuntimeError(f"coverage simplification broke {int(broken.sum())} polygon(s)")
    return simplified


def _to_map(geometries: np.ndarray, transform: affine.Affine) -> np.ndarray:
    """Move pixel-coordinate polygons into the map's CRS, exteriors counter-clockwise."""
    a, b, c, d, e, f = transform[:6]

    def apply(xy: np.ndarray) -> np.ndarray:
        return np.column_stack([a * xy[:, 0] + b * xy[:, 1] + c, d * xy[:, 0] + e * xy[:, 1] + f])

    return shapely.orient_polygons(shapely.transform(geometries, apply))
