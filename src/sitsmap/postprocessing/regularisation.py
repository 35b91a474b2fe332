"""Regularisation of a class map as iota2 does it: a majority filter, then a sieve.

The majority filter removes salt-and-pepper noise; the sieve then removes the
patches (4-connected groups of pixels of one class) smaller than a minimum mapping
unit. Both treat the array border as "outside the map" (no neighbour there), so
that regularising by windows with a halo of :func:`regularisation_halo` gives exactly
the whole-map result (see :mod:`sitsmap.postprocessing.windows`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse import csgraph

__all__ = [
    "DEFAULT_MAX_PASSES",
    "majority_filter",
    "regularisation_halo",
    "regularise",
    "sieve",
]

DEFAULT_MAX_PASSES = 8
"""Most passes of the sieve by default (see :func:`sieve` and :func:`regularisation_halo`)."""


def regularisation_halo(
    window_size: int, min_pixels: int, max_passes: int = DEFAULT_MAX_PASSES
) -> int:
    """Reach of :func:`regularise`: the halo its windows need.

    Parameters
    ----------
    window_size : int
        Side of the majority filter's window.
    min_pixels : int
        The sieve's minimum patch size.
    max_passes : int
        The sieve's maximum number of passes.

    Returns
    -------
    int
        ``window_size // 2 + max_passes * (2 * min_pixels - 2)`` (``window_size // 2``
        when ``min_pixels`` <= 1: the sieve then changes nothing).

    Notes
    -----
    Say that a read window agrees with the whole map on its *exact zone*, the pixels at
    least ``e`` pixels inside its cut sides (its sides on the raster's border are no cut).
    The majority filter's output is exact ``window_size // 2`` pixels in. One sieve pass
    then moves the edge of the exact zone in by ``2 * min_pixels - 2`` pixels (see
    :func:`sieve`), so after ``max_passes`` passes the zone begins at the returned value,
    where the core of the window begins. The sieve may stop early, on a pass that changes
    nothing; a map that a pass leaves as it is stays so under any further pass, so
    stopping early gives the result of all ``max_passes`` passes, in a window as on the
    whole map, and the core is exact however many passes either needed. The bound is
    reached for one and for two passes (a strip of small patches in the tests); the
    default 3 x 3 filter and 10 px unit give 1 + 8 * 18 = 145 pixels, a 50 px unit
    (0.5 ha at 10 m) 785.
    """
    return window_size // 2 + max_passes * _pass_reach(min_pixels)


def _pass_reach(min_pixels: int) -> int:
    """How far in from the edge of its exact zone one sieve pass can go wrong.

    Parameters
    ----------
    min_pixels : int
        The sieve's minimum patch size.

    Returns
    -------
    int
        ``2 * min_pixels - 2``, or 0 when ``min_pixels`` <= 1.
    """
    return max(0, 2 * min_pixels - 2)


def majority_filter(classes: np.ndarray, window_size: int = 3, nodata: int = 0) -> np.ndarray:
    """Give each pixel the most frequent class of its square window.

    Parameters
    ----------
    classes : numpy.ndarray of int
        ``(rows, cols)`` class codes.
    window_size : int
        Side of the window, odd and at least 1.
    nodata : int
        Code of the pixels without class: they stay so and are never counted.

    Returns
    -------
    numpy.ndarray
        Filtered codes, with the dtype of ``classes``. Only the valid pixels of the
        window inside the array count; on a tie a pixel keeps its own class when it
        is among the most frequent, else takes the smallest of them.

    Raises
    ------
    ValueError
        If ``window_size`` is not an odd integer >= 1 or ``classes`` is not 2-D.
    """
    if window_size < 1 or window_size % 2 == 0:
        raise ValueError(f"window_size must be an odd integer >= 1, got {window_size}")
    classes = np.asarray(classes)
    if classes.ndim != 2:
        raise ValueError(f"classes must be a 2-D array, got shape {classes.shape}")
    valid = classes != nodata
    count_type = np.min_scalar_type(window_size * window_size)  # exact and small
    best_code = classes.copy()
    best_count = np.zeros(classes.shape, dtype=count_type)
    own_count = np.zeros(classes.shape, dtype=count_type)
    ones = np.ones(window_size, dtype=count_type)
    # One count image per class present; codes ascending, and only a strictly larger
    # count replaces the best, so that ties go to the smallest code.
    for code in np.unique(classes[valid]):
        is_code = classes == code
        count = is_code.astype(count_type)
        for axis in (0, 1):  # exact integer box sums; mode="constant": nothing beyond the border
            count = ndimage.correlate1d(count, ones, axis=axis, mode="constant", cval=0)
        better = count > best_count
        np.copyto(best_code, code, where=better)
        np.copyto(best_count, count, where=better)
        np.copyto(own_count, count, where=is_code)
    keep = own_count == best_count  # the own class is among the most frequent
    return np.where(valid & ~keep, best_code, classes).astype(classes.dtype, copy=False)


def sieve(
    classes: np.ndarray,
    min_pixels: int,
    nodata: int = 0,
    max_passes: int = DEFAULT_MAX_PASSES,
) -> np.ndarray:
    """Merge the patches smaller than ``min_pixels`` into neighbouring patches, pass by pass.

    A patch is a 4-connected component of one class; its neighbours are the patches of
    the 4-adjacent pixels outside it (nodata pixels belong to no patch). A patch is
    *large* with ``min_pixels`` pixels or more, else *small*. Each pass judges every
    patch of the map the previous pass left, all at once:

    - a large patch keeps its class;
    - a small patch with a large neighbour takes, among the classes of its large
      neighbours, the one with the longest shared border (each pair of a patch pixel
      and an outside 4-neighbour counts once); ties go to the smallest code;
    - a small patch with small neighbours only takes the class of the neighbour that
      *outranks* it (is larger, or as large with a smaller code) with the most pixels
      (ties: the longest shared border, then the smallest code); without a neighbour
      that outranks it, it stays this pass;
    - a patch without neighbours (walled by nodata and the array border) stays.

    Passes repeat until one changes nothing, ``max_passes`` passes at most.

    Parameters
    ----------
    classes : numpy.ndarray of int
        ``(rows, cols)`` class codes.
    min_pixels : int
        Minimum patch size kept; 0 or 1 keeps every patch.
    nodata : int
        Code of the pixels without class: never changed, never a neighbour's class.
    max_passes : int
        Most passes made (at least 1).

    Returns
    -------
    numpy.ndarray
        The sieved codes, with the dtype of ``classes``.

    Raises
    ------
    ValueError
        If ``min_pixels`` is negative, ``max_passes`` is below 1 or ``classes`` is not
        2-D.

    Notes
    -----
    *Convergence.* A patch changes as a whole, so each patch of a pass's output contains
    the input patches of its pixels: the partition into patches only coarsens. A patch
    only takes the class of a neighbour that outranks it (large patches outrank small
    ones and never change), so the patches that change in a pass form chains of rising
    rank, each ending on a neighbour that stays, into which the last patch of the chain
    merges: a pass that changes something leaves fewer patches. Nothing can oscillate,
    and of two neighbours at most one changes (no swap: ``[[1, 2, 2]]`` gives
    ``[[2, 2, 2]]``, ``[[1, 1, 2, 2]]`` gives ``[[1, 1, 1, 1]]``). After a pass that
    changes nothing, no patch smaller than ``min_pixels`` has a neighbour: such a patch
    would change, or, outranking all its neighbours, they would. So the sieve removes
    exactly the patches below the minimum unit, but those walled by nodata, and leaves
    the large patches' pixels as they were (large patches only grow). Reaching
    ``max_passes`` first leaves some small patches; that takes nesting or chains of
    small patches of rising rank ``max_passes`` deep (a noisy 2000 x 2000 map of 23
    classes needed 2 passes after the 3 x 3 majority filter, with a 10 or a 50 px
    unit, and up to 3 without the filter).

    *Windows.* One pass's output at a pixel depends only on its patch, that patch's
    neighbours, their sizes when small and whether each is large. Say that the read
    window and the whole map agree on a zone: the pixels at least ``e`` pixels in from
    the cut sides of the window. Take a pixel ``d >= e + 2 * min_pixels - 2`` pixels in.
    A patch of the window that holds a pixel ``k >= e`` pixels in and one ``e`` pixels in
    holds, on the whole map as in the window, a path of ``k - e + 1`` zone pixels; any
    other patch of the window through a pixel of the zone is the whole map's patch. So
    the pixel's patch is large on both (``d - e + 1 >= min_pixels``: the pixel stays) or
    the same small patch, whose pixels lie within ``min_pixels - 2`` of the pixel and
    whose neighbours reach within ``min_pixels - 1``: each neighbour is then large on both
    (``d - min_pixels + 2 - e >= min_pixels``) or the same patch, with the same shared
    border. The pass is exact ``2 * min_pixels - 2`` pixels further in than its input,
    whence :func:`regularisation_halo`. Why not ``rasterio.features.sieve``: GDAL merges
    a small polygon into its largest neighbouring polygon, whose size is not known in a
    window.

    The patches are labelled once; the passes then work on the graph of patches (their
    sizes, classes and shared borders), merged patches taking the union of their
    borders, and the map is rewritten once at the end.
    """
    if min_pixels < 0:
        raise ValueError(f"min_pixels must be >= 0, got {min_pixels}")
    if max_passes < 1:
        raise ValueError(f"max_passes must be >= 1, got {max_passes}")
    classes = np.asarray(classes)
    if classes.ndim != 2:
        raise ValueError(f"classes must be a 2-D array, got shape {classes.shape}")
    codes = np.unique(classes[classes != nodata])
    if min_pixels <= 1 or codes.size == 0:
        return classes.copy()
    patches, patch_code = _patches(classes, codes, nodata)
    n_patches = patch_code.size
    size = np.bincount(patches.ravel(), minlength=n_patches)  # per patch id (0: nodata)
    small = size < min_pixels
    small[0] = False
    if not small.any():
        return classes.copy()
    # Directed edges (small patch, neighbouring patch) with their shared border. Large
    # patches never move, so their own edges are never needed.
    inner, outer = _border_pairs(patches, small)
    shape = (n_patches, n_patches)
    source, target, border = _sum_repeats(inner, outer, np.ones(inner.size, np.int64), shape)
    group = np.arange(n_patches)  # each labelled patch's current patch: one id of its union
    code = patch_code.copy()  # current class of each current patch
    changed = False
    for _ in range(max_passes):
        moving, new_code = _moves(source, target, border, size, code, codes, min_pixels)
        if moving.size == 0:
            break
        changed = True
        code[moving] = new_code
        merged = _merge(source, target, code, size)
        group = merged[group]
        source, target = merged[source], merged[target]
        keep = (source != target) & (size[source] < min_pixels)
        source, target, border = _sum_repeats(source[keep], target[keep], border[keep], shape)
        if source.size == 0:
            break
    if not changed:
        return classes.copy()
    return code[group][patches].astype(classes.dtype, copy=False)


def regularise(
    classes: np.ndarray,
    window_size: int,
    min_pixels: int,
    nodata: int = 0,
    max_passes: int = DEFAULT_MAX_PASSES,
) -> np.ndarray:
    """Regularise a class map: :func:`majority_filter`, then :func:`sieve`.

    Parameters
    ----------
    classes : numpy.ndarray of int
        ``(rows, cols)`` class codes.
    window_size : int
        Side of the majority filter's window (odd, >= 1).
    min_pixels : int
        Minimum patch size kept by the sieve.
    nodata : int
        Code of the pixels without class.
    max_passes : int
        Most passes of the sieve.

    Returns
    -------
    numpy.ndarray
        The regularised codes, with the dtype of ``classes``.
    """
    filtered = majority_filter(classes, window_size, nodata)
    return sieve(filtered, min_pixels, nodata, max_passes)


def _patches(classes: np.ndarray, codes: np.ndarray, nodata: int) -> tuple[np.ndarray, np.ndarray]:
    """Number the 4-connected patches of each code.

    Parameters
    ----------
    classes : numpy.ndarray of int
        ``(rows, cols)`` class codes.
    codes : numpy.ndarray
        The codes present, nodata excluded, ascending.
    nodata : int
        Code of the pixels without class.

    Returns
    -------
    patches : numpy.ndarray of int32 (int64 for more than 2**31 pixels)
        ``(rows, cols)`` patch ids from 1; 0 on nodata pixels.
    patch_code : numpy.ndarray
        Code of each patch id, ``nodata`` for id 0.
    """
    patches = np.zeros(classes.shape, dtype=np.int32 if classes.size < 2**31 else np.int64)
    counts = []
    offset = 0
    for code in codes:
        is_code = classes == code
        labels, count = ndimage.label(is_code)  # default structure: 4-connectivity
        np.add(labels, offset, out=patches, where=is_code)
        offset += count
        counts.append(count)
    patch_code = np.concatenate([[nodata], np.repeat(codes, counts)]).astype(classes.dtype)
    return patches, patch_code


def _border_pairs(patches: np.ndarray, small: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (small patch, outside patch) of 4-adjacent pixels, one per adjacency.

    Parameters
    ----------
    patches : numpy.ndarray of int
        Patch ids, 0 for nodata.
    small : numpy.ndarray of bool
        Per patch id, whether it is below the minimum size (False for 0).

    Returns
    -------
    inner, outer : numpy.ndarray
        ``(n_pairs,)`` each: the small patch's id and the neighbouring patch's id
        (never 0).
    """
    in_small = small[patches]
    inner, outer = [], []
    for axis in (0, 1):
        low = (slice(None, -1), slice(None)) if axis == 0 else (slice(None), slice(None, -1))
        high = (slice(1, None), slice(None)) if axis == 0 else (slice(None), slice(1, None))
        for here, there in ((low, high), (high, low)):
            # Adjacent pixels of different patches are of different classes (4-connectivity).
            keep = in_small[here] & (patches[there] != 0) & (patches[here] != patches[there])
            inner.append(patches[here][keep])
            outer.append(patches[there][keep])
    return np.concatenate(inner), np.concatenate(outer)


def _sum_repeats(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum the values of repeated (row, col) pairs.

    Parameters
    ----------
    rows, cols : numpy.ndarray of int
        ``(n,)`` pairs, within ``shape``.
    values : numpy.ndarray of int
        ``(n,)`` value of each pair.
    shape : tuple of int
        Bounds of the rows and columns.

    Returns
    -------
    rows, cols, totals : numpy.ndarray of int64
        One entry per distinct pair, sorted by row then column.
    """
    # A sparse matrix sums the repeats after a counting sort on the rows: faster than
    # np.unique's sort of all the pairs.
    matrix = sparse.coo_matrix((values, (rows, cols)), shape=shape).tocsr()
    matrix.sum_duplicates()
    entries = matrix.tocoo()
    return (
        entries.row.astype(np.int64),
        entries.col.astype(np.int64),
        entries.data.astype(np.int64),
    )


def _first_of_each(sorted_ids: np.ndarray) -> np.ndarray:
    """Positions of the first entry of each run of equal ids in a sorted array.

    Parameters
    ----------
    sorted_ids : numpy.ndarray
        ``(n,)`` ids, equal ones next to each other.

    Returns
    -------
    numpy.ndarray of bool
        ``(n,)``, True at the first entry of each run.
    """
    first = np.ones(sorted_ids.size, dtype=bool)
    first[1:] = sorted_ids[1:] != sorted_ids[:-1]
    return first


def _moves(
    source: np.ndarray,
    target: np.ndarray,
    border: np.ndarray,
    size: np.ndarray,
    code: np.ndarray,
    codes: np.ndarray,
    min_pixels: int,
) -> tuple[np.ndarray, np.ndarray]:
    """One pass of the sieve's rule on the graph of patches (see :func:`sieve`).

    Parameters
    ----------
    source, target, border : numpy.ndarray of int
        ``(n_edges,)`` directed edges, one per (small patch, neighbouring patch), and
        their shared borders.
    size, code : numpy.ndarray
        Per patch id, its pixel count and class.
    codes : numpy.ndarray
        The codes present, ascending.
    min_pixels : int
        Minimum patch size.

    Returns
    -------
    moving : numpy.ndarray of int64
        The patches that change class.
    new_code : numpy.ndarray
        Their new classes.
    """
    large = size[target] >= min_pixels
    # Small patches with a large neighbour: the class with the longest border among them.
    patch, code_index, length = _sum_repeats(
        source[large],
        np.searchsorted(codes, code[target[large]]),
        border[large],
        (size.size, codes.size),
    )
    order = np.lexsort((code_index, -length, patch))  # first: longest, then smallest code
    best = order[_first_of_each(patch[order])]
    to_large, to_large_code = patch[best], codes[code_index[best]]
    # Small patches with small neighbours only: the largest neighbour that outranks them.
    has_large = np.zeros(size.size, dtype=bool)
    has_large[to_large] = True
    mine, theirs = size[source], size[target]
    outranks = (theirs > mine) | ((theirs == mine) & (code[target] < code[source]))
    candidate = ~has_large[source] & outranks
    mover, neighbour = source[candidate], target[candidate]
    order = np.lexsort((code[neighbour], -border[candidate], -size[neighbour], mover))
    best = order[_first_of_each(mover[order])]
    to_small, to_small_code = mover[best], code[neighbour[best]]
    return (
        np.concatenate([to_large, to_small]),
        np.concatenate([to_large_code, to_small_code]),
    )


def _merge(
    source: np.ndarray, target: np.ndarray, code: np.ndarray, size: np.ndarray
) -> np.ndarray:
    """Union the neighbouring patches that a pass gave the same class.

    Parameters
    ----------
    source, target : numpy.ndarray of int
        ``(n_edges,)`` edges between neighbouring patches (every pair of neighbours of
        which one is small appears).
    code : numpy.ndarray
        Per patch id, its class after the pass.
    size : numpy.ndarray
        Per patch id, its pixel count; updated in place for the unions.

    Returns
    -------
    numpy.ndarray of int
        Per patch id, the id of its union (one of the ids in it).
    """
    same = code[source] == code[target]
    n_patches = size.size
    graph = sparse.coo_matrix(
        (np.ones(same.sum(), dtype=np.int8), (source[same], target[same])),
        shape=(n_patches, n_patches),
    )
    n_unions, union = csgraph.connected_components(graph, directed=False)
    member = np.empty(n_unions, dtype=np.int64)
    member[union] = np.arange(n_patches)  # one id of each union
    total = np.bincount(union, weights=size, minlength=n_unions)
    size[member] = total.astype(size.dtype)
    return member[union]
