"""Compiled inference for tree models: random forests and LightGBM without their libraries.

Classification is most of a map's cost, and nearly all of it is walking trees.
:func:`compile_trees` flattens a fitted :class:`~sitsmap.learning.classical.RandomForest`
or :class:`~sitsmap.learning.classical.LightGBM` into a few plain arrays (split
feature, threshold, children, missing-value direction; leaf values), which
numba-compiled kernels walk several pixels at a time, on a block of pixels small
enough to stay in the CPU's caches. The kernels release the GIL: a task's
threads each take a share of the rows.

The result is the library's own, bit for bit: thresholds are the libraries' float64
ones rounded down to float32, which split float32 features exactly as they do, the same
missing-value rules are applied (scikit-learn's ``missing_go_to_left``,
LightGBM's ``None``/``Zero``/``NaN`` missing types, and its reading of values
within 1e-35 of 0 as 0), and leaf values are summed in float64 in the trees'
order, then averaged (forest) or put through LightGBM's softmax or sigmoid, as
the libraries do. So the class maps are identical, ties included.

The learning step saves the arrays beside the model file
(:func:`save_compiled`, ``<model>.compiled.npz``, no pickle) with the model
file's SHA-256; classification (:func:`with_compiled`) uses them when that
digest matches, and the library's ``predict_proba`` otherwise, saying why once
(a stale or damaged artefact, numba missing, a model it cannot compile: LightGBM
with categorical splits, another objective than ``multiclass``/``binary``, or
``boosting: rf``). An older model without an artefact is compiled when loaded
(a second or two). ``arg_classification.compiled_inference: false`` (or
``SITSMAP_COMPILED_INFERENCE=0``) keeps the libraries.

Regressors (``arg_train.task: regression``) are not compiled: they predict with their
library (a forest's uncertainty needs every tree's value, which the kernels do not
keep), said in a DEBUG line only, as nothing is wrong.

Why flat arrays and numba rather than code generated per model (measured for issue 15
on the chain's default forest and LightGBM, 481 features; see BENCHMARKS.md): TL2cgen
spent 2 to 3.5 minutes of gcc on a 100-tree forest of 21 000 nodes (forests of hard
maps have 40 times more) for 1.3× scikit-learn, and its ``DMatrix`` fails on NumPy 2;
lleaves 1.3 does not run on llvmlite 0.50 (numba 0.68's), and once ported to the new
pass manager took 9 minutes of LLVM for one LightGBM model (each tree's function takes
the 481 features as arguments) for 2.6–3.6× LightGBM; ONNX Runtime was 2.1× scikit-learn
but sums in float32 (probabilities off by up to 7e-7, so ties may break otherwise).
Flattening takes a second, the kernels are compiled once per machine (numba's cache).
"""

from __future__ import annotations

import importlib
import logging
import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "COMPILED_FORMAT",
    "CompiledClassifier",
    "CompiledTrees",
    "UnsupportedModelError",
    "compile_trees",
    "compiled_inference_enabled",
    "save_compiled",
    "with_compiled",
]

log = logging.getLogger(__name__)

COMPILED_FORMAT = "sitsmap-compiled-trees"
"""Marker stored in every artefact."""

COMPILED_VERSION = 1
"""Version of the artefact's layout; another version is not read (the model is recompiled)."""

ENV_SWITCH = "SITSMAP_COMPILED_INFERENCE"
"""Environment variable that, set to ``0``/``false``/``no``/``off``, keeps the libraries."""

BLOCK_ROWS = {"rf": (64, 512), "lightgbm": (64, 64)}
"""Rows walked through every tree before the next block (fewest, most). The block's
features (481 float32 a row: 123 kB for 64 rows, 1 MB for 512) stay in the L2 cache
while a tree is walked, and each tree's nodes are read once per block: small trees
want small blocks, the deep bushy trees of a hard map's forest (8 000 nodes, 100 kB
each) want large ones (:meth:`CompiledTrees.block_rows`). Measured on this project's
2-core machine, 64 to 4096 rows tried: 64 best for the chain's synthetic forest
(200 nodes a tree) and for LightGBM, 512 for forests of 8 000-node trees."""

AVERAGE, SOFTMAX, SIGMOID = 0, 1, 2
"""How summed leaf values become probabilities: forest mean, LightGBM multiclass, binary."""

NAN_RIGHT, ZERO_DEFAULT = 1, 2
"""A node's flags: NaN goes to the second child (else the first); a zero feature goes
the NaN way (LightGBM's ``Zero`` missing type)."""

FEATURE_BITS = 28
FEATURE_MASK = (1 << FEATURE_BITS) - 1
"""A node's flags are stored above its feature's index, in the same int32."""

_warned: set[str] = set()


class UnsupportedModelError(ValueError):
    """The model cannot be compiled; the library predicts instead."""


@dataclass
class CompiledTrees:
    """A tree ensemble as flat arrays, and the kernels that predict with them.

    Attributes
    ----------
    kind : str
        ``rf`` or ``lightgbm``.
    classes : numpy.ndarray
        Class codes, in the order of the probability columns (the model's ``classes_``).
    n_features : int
        Features every row must have.
    output : int
        :data:`AVERAGE`, :data:`SOFTMAX` or :data:`SIGMOID`.
    sigmoid : float
        LightGBM's sigmoid parameter (binary objective).
    nodes : numpy.ndarray
        ``(nodes, 2)`` int32: split feature with the missing-value flags
        (``feature | flags << 28``, :data:`NAN_RIGHT`, :data:`ZERO_DEFAULT`), and the
        first child (the second follows it), or ``-1 - leaf`` for a leaf.
    threshold : numpy.ndarray
        float32 threshold of each node (``x > t`` goes to the second child), the
        library's float64 one rounded down; ``+inf`` for a leaf.
    roots : numpy.ndarray
        Node of each tree's root.
    leaf_start : numpy.ndarray
        Leaf ``j``'s values are entries ``leaf_start[j]`` to ``leaf_start[j + 1]``
        (``leaves + 1`` offsets): a forest's leaves keep their non-zero class fractions
        only (a leaf of a deep tree holds a few samples, so a few classes: the sums are
        the same, and a tenth of the memory is read); a LightGBM leaf has one score.
    leaf_class : numpy.ndarray
        Column of each entry (forest; zeros for LightGBM, whose trees have a class).
    values : numpy.ndarray
        float64 value of each entry.
    tree_class : numpy.ndarray
        Column each tree's score adds to (LightGBM; zeros for a forest).
    """

    kind: str
    classes: np.ndarray
    n_features: int
    output: int
    sigmoid: float
    nodes: np.ndarray
    threshold: np.ndarray
    roots: np.ndarray
    leaf_start: np.ndarray
    leaf_class: np.ndarray
    values: np.ndarray
    tree_class: np.ndarray
    header: dict[str, Any] = field(default_factory=dict)

    DTYPES = {
        "nodes": np.int32,
        "threshold": np.float32,
        "roots": np.int32,
        "leaf_start": np.int64,
        "leaf_class": np.int32,
        "values": np.float64,
        "tree_class": np.int32,
    }

    @property
    def n_classes(self) -> int:
        """Probability columns."""
        return int(self.classes.size)

    @property
    def block_rows(self) -> int:
        """Rows per block: a power of two, about a sixteenth of a tree's nodes, in bounds."""
        fewest, most = BLOCK_ROWS[self.kind]
        per_tree = self.nodes.shape[0] / max(1, self.roots.size)
        wanted = 2 ** round(math.log2(max(1.0, per_tree / 16)))
        return int(min(max(wanted, fewest), most))

    def predict_proba(self, X: np.ndarray, threads: int = 1) -> np.ndarray:
        """Class probabilities of the rows of ``X`` as float32, columns in ``classes`` order.

        ``threads`` threads each take a contiguous share of the rows.
        """
        X = np.ascontiguousarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected (n, {self.n_features}) features, got {X.shape}")
        out = np.empty((X.shape[0], self.n_classes), dtype=np.float32)
        block = self.block_rows
        threads = max(1, min(int(threads), math.ceil(X.shape[0] / block)))
        if threads == 1:
            self._run(X, out)
            return out
        bounds = np.linspace(0, X.shape[0], threads + 1).astype(int)
        with ThreadPoolExecutor(max_workers=threads) as pool:
            jobs = [
                pool.submit(self._run, X[a:b], out[a:b])
                for a, b in zip(bounds[:-1], bounds[1:], strict=True)
                if b > a
            ]
            for job in jobs:
                job.result()
        return out

    def _run(self, X: np.ndarray, out: np.ndarray) -> None:
        kernels = _kernels()
        if self.kind == "rf":
            kernels.forest_proba(
                X,
                self.nodes,
                self.threshold,
                self.roots,
                self.leaf_start,
                self.leaf_class,
                self.values,
                out,
                self.block_rows,
            )
        else:
            kernels.boosted_proba(
                X,
                self.nodes,
                self.threshold,
                self.roots,
                self.values,
                self.tree_class,
                self.output,
                self.sigmoid,
                out,
                self.block_rows,
            )

    def to_arrays(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The artefact's JSON header and arrays (see :func:`save_compiled`)."""
        header = {
            "format": COMPILED_FORMAT,
            "version": COMPILED_VERSION,
            "kind": self.kind,
            "n_features": int(self.n_features),
            "output": int(self.output),
            "sigmoid": float(self.sigmoid),
            **self.header,
        }
        arrays = {name: np.asarray(getattr(self, name)) for name in self.DTYPES}
        return header, {**arrays, "classes": np.asarray(self.classes)}

    @classmethod
    def from_arrays(cls, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> CompiledTrees:
        """Rebuild from :meth:`to_arrays`' output, refusing arrays a kernel could overrun.

        Raises
        ------
        ValueError
            If the header or the arrays are not a consistent artefact of this version.
        """
        if header.get("format") != COMPILED_FORMAT or header.get("version") != COMPILED_VERSION:
            raise ValueError("not a compiled-trees artefact of this sitsmap version")
        if header.get("kind") not in ("rf", "lightgbm"):
            raise ValueError(f"unknown kind {header.get('kind')!r}")
        missing = {*cls.DTYPES, "classes"} - set(arrays)
        if missing:
            raise ValueError(f"arrays {sorted(missing)} are missing")
        for name, dtype in cls.DTYPES.items():
            if arrays[name].dtype != dtype:
                raise ValueError(f"array {name} is {arrays[name].dtype}, not {np.dtype(dtype)}")
        typed = {name: np.ascontiguousarray(arrays[name]) for name in cls.DTYPES}
        trees = cls(
            kind=str(header["kind"]),
            classes=np.asarray(arrays["classes"]),
            n_features=int(header["n_features"]),
            output=int(header["output"]),
            sigmoid=float(header["sigmoid"]),
            header={k: v for k, v in header.items() if k == "model_sha256"},
            **typed,
        )
        trees.check()
        return trees

    def check(self) -> None:
        """Refuse arrays whose indices leave their bounds or loop (the kernels do not check).

        Raises
        ------
        ValueError
            On the first inconsistency found.
        """
        size = self.nodes.shape[0] if self.nodes.ndim == 2 else -1
        leaves = self.leaf_start.size - 1
        broken = (
            self.nodes.ndim != 2
            or self.nodes.shape[1] != 2
            or self.threshold.shape != (size,)
            or self.leaf_start.ndim != 1
            or leaves < 1
            or self.values.ndim != 1
            or self.leaf_class.shape != self.values.shape
            or self.classes.ndim != 1
            or self.n_classes < 1
            or not 1 <= self.n_features <= FEATURE_MASK
            or self.output not in (AVERAGE, SOFTMAX, SIGMOID)
            or (self.kind == "rf") != (self.output == AVERAGE)
            or (self.output == SIGMOID and self.n_classes != 2)
            or self.roots.ndim != 1
            or self.roots.size < 1
            or self.tree_class.shape != self.roots.shape
        )
        if broken:
            raise ValueError("compiled trees have arrays of inconsistent shapes")
        meta, child = self.nodes[:, 0], self.nodes[:, 1].astype(np.int64)
        inner = child >= 0
        index = np.arange(size)
        broken = (
            np.any(meta < 0)
            or np.any((meta & FEATURE_MASK) >= self.n_features)
            or np.any((meta >> FEATURE_BITS) > NAN_RIGHT + ZERO_DEFAULT)
            # an inner node's children come after it and inside the arrays: no loop, no overrun
            or np.any(child[inner] <= index[inner])
            or np.any(child[inner] + 1 >= size)
            or np.any(-1 - child[~inner] >= leaves)
            # a leaf sends every row to its leaf (a NaN or zero too): its flags are 0
            or np.any(meta[~inner] >> FEATURE_BITS)
            or not np.all(self.threshold[~inner] == np.inf)
            or np.any((self.roots < 0) | (self.roots >= size))
            or np.any((self.tree_class < 0) | (self.tree_class >= self.n_classes))
            or self.leaf_start[0] != 0
            or self.leaf_start[-1] != self.values.size
            or np.any(np.diff(self.leaf_start) < 0)
            or np.any((self.leaf_class < 0) | (self.leaf_class >= self.n_classes))
            # LightGBM's kernel reads one score per leaf
            or (self.kind != "rf" and not np.array_equal(self.leaf_start, np.arange(leaves + 1)))
        )
        if broken:
            raise ValueError("compiled trees have indices out of bounds or inconsistent")


# ----------------------------------------------------------------------------- compiling


def compile_trees(model: Any) -> CompiledTrees:
    """Flatten a fitted forest or LightGBM model into :class:`CompiledTrees`.

    Raises
    ------
    UnsupportedModelError
        If ``model`` is not a random forest or LightGBM model, or uses what the
        kernels do not implement.
    """
    from sklearn.ensemble import RandomForestClassifier

    from sitsmap.learning.classical import LightGBM

    if isinstance(model, LightGBM):
        trees = _compile_lightgbm(model)
    elif isinstance(model, RandomForestClassifier):
        trees = _compile_forest(model)
    else:
        raise UnsupportedModelError(f"no compiled inference for a {type(model).__name__}")
    trees.check()
    return trees


class _Builder:
    """Collects trees: each an array of nodes whose children are side by side."""

    def __init__(self) -> None:
        self.nodes: list[np.ndarray] = []
        self.thresholds: list[np.ndarray] = []
        self.values: list[np.ndarray] = []
        self.roots: list[int] = []
        self.size = 0
        self.leaves = 0

    def add(
        self,
        left: np.ndarray,
        right: np.ndarray,
        feature: np.ndarray,
        threshold: np.ndarray,
        flags: np.ndarray,
        leaf_values: np.ndarray,
    ) -> None:
        """Add one tree: inner nodes ``0..m-1`` (root 0, ``parent < child``), leaves ``~c``.

        ``left``/``right`` give each inner node's children: an inner node's index, or
        ``-1 - leaf`` for a leaf (``leaf_values`` row). Inner node ``i``'s children are
        placed at ``1 + 2 i`` and ``2 + 2 i``: a child always comes after its parent.
        """
        inner = left.size
        count = 2 * inner + 1
        nodes = np.zeros((count, 2), dtype=np.int64)
        thresholds = np.full(count, np.inf, dtype=np.float32)
        slot_of_inner = np.zeros(inner, dtype=np.int64)
        slot_of_leaf = np.zeros(leaf_values.shape[0], dtype=np.int64)
        if inner:
            for side, children in ((1, left), (2, right)):
                slots = 2 * np.arange(inner) + side
                is_inner = children >= 0
                slot_of_inner[children[is_inner]] = slots[is_inner]
                slot_of_leaf[-1 - children[~is_inner]] = slots[~is_inner]
            nodes[slot_of_inner, 0] = feature | (flags.astype(np.int64) << FEATURE_BITS)
            nodes[slot_of_inner, 1] = self.size + 1 + 2 * np.arange(inner)
            thresholds[slot_of_inner] = _round_down(threshold)
        nodes[slot_of_leaf, 1] = -1 - (self.leaves + np.arange(leaf_values.shape[0]))
        self.nodes.append(nodes)
        self.thresholds.append(thresholds)
        self.values.append(leaf_values)
        self.roots.append(self.size)
        self.size += count
        self.leaves += leaf_values.shape[0]

    def build(self, sparse: bool, **fields: Any) -> CompiledTrees:
        """The collected trees, with the other fields of :class:`CompiledTrees`.

        ``sparse``: keep each leaf's non-zero values only (a forest's class fractions).
        """
        values = np.concatenate(self.values).astype(np.float64)
        if sparse:
            leaf, column = np.nonzero(values)  # leaf by leaf, columns in order
            counts = np.bincount(leaf, minlength=values.shape[0])
        else:
            leaf, column = np.arange(values.shape[0]), np.zeros(values.shape[0], dtype=np.int64)
            counts = np.ones(values.shape[0], dtype=np.int64)
        return CompiledTrees(
            nodes=np.concatenate(self.nodes).astype(np.int32),
            threshold=np.concatenate(self.thresholds),
            roots=np.asarray(self.roots, dtype=np.int32),
            leaf_start=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            leaf_class=column.astype(np.int32),
            values=np.ascontiguousarray(values[leaf, column]),
            **fields,
        )


def _round_down(threshold: np.ndarray) -> np.ndarray:
    """The largest float32 at or below each float64 threshold.

    For a float32 ``x``, ``x <= t`` exactly when ``x <= round_down(t)``: the split
    is the same, on 4 bytes instead of 8.
    """
    single = np.asarray(threshold, dtype=np.float64).astype(np.float32)
    above = single.astype(np.float64) > threshold
    single[above] = np.nextafter(single[above], np.float32(-np.inf))
    return single


def _compile_forest(forest: Any) -> CompiledTrees:
    """A scikit-learn forest: every tree's nodes, its leaves' class fractions."""
    if getattr(forest, "n_outputs_", 1) != 1:
        raise UnsupportedModelError("a multi-output forest")
    classes = np.asarray(forest.classes_)
    builder = _Builder()
    for estimator in forest.estimators_:
        tree = estimator.tree_
        left, right = np.asarray(tree.children_left), np.asarray(tree.children_right)
        is_leaf = left == -1
        # scikit-learn numbers nodes depth first (children after parents): renumber
        # inner nodes and leaves separately, in that order
        number = np.where(is_leaf, -1 - (np.cumsum(is_leaf) - 1), np.cumsum(~is_leaf) - 1)
        inner = ~is_leaf
        value = np.asarray(tree.value)[is_leaf, 0, :]
        if value.shape[1] != classes.size:
            raise UnsupportedModelError("a tree's value table does not match the classes")
        if is_leaf[0]:  # a tree of one leaf: its root is the leaf
            builder.add(*(np.zeros(0, dtype=np.int64),) * 5, value)
            continue
        nan_right = np.asarray(tree.missing_go_to_left)[inner] == 0
        builder.add(
            number[left[inner]],
            number[right[inner]],
            np.asarray(tree.feature)[inner].astype(np.int64),
            np.asarray(tree.threshold)[inner],
            nan_right * NAN_RIGHT,
            value,
        )
    return builder.build(
        sparse=True,
        kind="rf",
        classes=classes,
        n_features=int(forest.n_features_in_),
        output=AVERAGE,
        sigmoid=1.0,
        tree_class=np.zeros(len(builder.roots), dtype=np.int32),
    )


def _compile_lightgbm(model: Any) -> CompiledTrees:
    """LightGBM's text model (the trees ``predict_proba`` uses), parsed."""
    text = model.booster_.model_to_string(num_iteration=None)  # the best iteration's, as predict
    header, trees = _parse_lightgbm_text(text)
    objective = header.get("objective", "").split()
    classes = np.asarray(model.classes_)
    if "average_output" in header:
        raise UnsupportedModelError("LightGBM with boosting: rf (averaged output)")
    if objective[:1] == ["multiclass"] and classes.size > 2:
        output, sigmoid, per_iteration = SOFTMAX, 1.0, classes.size
    elif objective[:1] == ["binary"] and classes.size == 2:
        output, per_iteration = SIGMOID, 1
        options = dict(part.split(":", 1) for part in objective[1:] if ":" in part)
        sigmoid = float(options.get("sigmoid", 1.0))
    else:
        raise UnsupportedModelError(f"LightGBM objective {' '.join(objective) or '?'}")
    if int(header.get("num_tree_per_iteration", per_iteration)) != per_iteration:
        raise UnsupportedModelError("LightGBM trees per iteration do not match the classes")
    builder = _Builder()
    tree_class = []
    for number, tree in enumerate(trees):
        n_leaves = int(tree["num_leaves"])
        leaf_value = np.asarray(tree["leaf_value"].split(), dtype=np.float64)[:n_leaves, None]
        if int(tree.get("num_cat", 0)) != 0:
            raise UnsupportedModelError("LightGBM with categorical splits")
        tree_class.append(number % per_iteration)
        if n_leaves == 1:
            builder.add(*(np.zeros(0, dtype=np.int64),) * 5, leaf_value)
            continue
        decision = np.asarray(tree["decision_type"].split(), dtype=np.int64)
        threshold = np.asarray(tree["threshold"].split(), dtype=np.float64)
        if np.any(decision & 1):
            raise UnsupportedModelError("LightGBM with categorical splits")
        default_left = (decision & 2) != 0
        missing_type = (decision >> 2) & 3
        # NaN: the default way (NaN and Zero types), or where 0 goes (None type: NaN is 0)
        nan_right = np.where(missing_type == 0, ~(threshold >= 0.0), ~default_left)
        builder.add(
            np.asarray(tree["left_child"].split(), dtype=np.int64),  # ~leaf for a leaf
            np.asarray(tree["right_child"].split(), dtype=np.int64),
            np.asarray(tree["split_feature"].split(), dtype=np.int64),
            threshold,
            nan_right * NAN_RIGHT + (missing_type == 1) * ZERO_DEFAULT,
            leaf_value,
        )
    return builder.build(
        sparse=False,
        kind="lightgbm",
        classes=classes,
        n_features=int(model.n_features_in_),
        output=output,
        sigmoid=sigmoid,
        tree_class=np.asarray(tree_class, dtype=np.int32),
    )


def _parse_lightgbm_text(text: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """LightGBM's text model: its header's ``key=value`` lines and each tree's."""
    header: dict[str, str] = {}
    trees: list[dict[str, str]] = []
    current = header
    for line in text.splitlines():
        if line.startswith("Tree="):
            current = {}
            trees.append(current)
        elif line.startswith("end of trees"):
            break
        elif "=" in line:
            key, _, value = line.partition("=")
            current[key] = value
        elif line.strip() == "average_output":
            header["average_output"] = ""
    return header, trees


# ----------------------------------------------------------------------------- files


def artefact_path(model_path: Path) -> Path:
    """Where the compiled trees of ``model_path`` are kept: ``<model>.compiled.npz``."""
    from sitsmap.io.compiled import compiled_path

    return compiled_path(model_path)


def save_compiled(model_path: Path, model: Any, model_sha256: str) -> Path | None:
    """Compile ``model`` and write it beside ``model_path``, bound to its SHA-256.

    Never fails: a model that cannot be compiled (or a failed write) is logged and
    leaves no artefact; classification then uses the library (deep networks and SVMs
    have none, silently). Returns the artefact's path, or None.
    """
    from sitsmap.io.compiled import remove_compiled, write_compiled

    remove_compiled(model_path)  # never leave an artefact of an earlier model
    if _regressor(model):
        log.debug(
            "compiled inference: not for regressors; %s predicts itself", type(model).__name__
        )
        return None
    try:
        trees = compile_trees(model)
    except UnsupportedModelError as exc:
        if _tree_model(model):
            log.warning("compiled inference: %s; classification will use the library", exc)
        return None
    except ImportError as exc:  # numba missing: nothing is compiled, classification will say
        log.info("compiled inference unavailable (%s)", exc)
        return None
    header, arrays = trees.to_arrays()
    header["model_sha256"] = model_sha256
    try:
        path = write_compiled(model_path, header, arrays)
    except OSError as exc:
        log.warning("compiled inference: cannot write the compiled trees (%s)", exc)
        return None
    log.info("compiled %s trees (%d nodes) to %s", trees.kind, trees.nodes.shape[0], path)
    return path


def _regressor(model: Any) -> bool:
    """Whether ``model`` is a regressor (its class says ``task = "regression"``)."""
    return getattr(type(model), "task", None) == "regression"


def _tree_model(model: Any) -> bool:
    from sklearn.ensemble import RandomForestClassifier

    from sitsmap.learning.classical import LightGBM

    return isinstance(model, LightGBM | RandomForestClassifier)


# ----------------------------------------------------------------------------- using


def compiled_inference_enabled(configured: bool = True) -> bool:
    """Whether to use compiled inference: the configuration's switch, unless the env says no."""
    value = os.environ.get(ENV_SWITCH, "").strip().lower()
    return configured and value not in ("0", "false", "no", "off")


class CompiledClassifier:
    """A tree model that predicts with its :class:`CompiledTrees`; the library model for the rest.

    ``predict_proba`` and ``predict`` use the compiled trees on ``threads`` threads
    (``set_params(n_jobs=...)`` sets them, as the library's ``n_jobs``); every other
    attribute is the library model's.
    """

    def __init__(self, model: Any, trees: CompiledTrees, threads: int = 1) -> None:
        if [int(c) for c in trees.classes] != [int(c) for c in np.asarray(model.classes_)]:
            raise ValueError("the compiled trees' classes differ from the model's")
        self.model = model
        self.trees = trees
        self.threads = max(1, int(threads))
        self.classes_ = np.asarray(model.classes_)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities (float32), columns in ``classes_`` order."""
        return self.trees.predict_proba(X, self.threads)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The most probable class of each row."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The library model's parameters."""
        return self.model.get_params(deep)

    def set_params(self, **params: Any) -> CompiledClassifier:
        """Set the library model's parameters; ``n_jobs`` also sets the compiled threads."""
        if params.get("n_jobs") is not None:
            self.threads = max(1, int(params["n_jobs"]))
        self.model.set_params(**params)
        return self

    def fit(self, *args: Any, **kwargs: Any) -> Any:
        """Not supported: a compiled model is fitted already."""
        raise TypeError("a compiled model cannot be refitted; fit the library model")

    def __getattr__(self, name: str) -> Any:
        if name in ("model", "trees", "threads"):  # not set yet (copying, unpickling)
            raise AttributeError(name)
        return getattr(self.model, name)


def with_compiled(
    model: Any,
    model_path: Path,
    model_sha256: str | None,
    threads: int | None = None,
    enabled: bool = True,
) -> Any:
    """``model`` predicting with its compiled trees when they can be used; else ``model``.

    Parameters
    ----------
    model : ClassifierProtocol
        The library model, as :func:`~sitsmap.learning.persistence.load_model` read it.
    model_path : Path
        Its file; the artefact is looked for beside it.
    model_sha256 : str, optional
        The model file's digest (the learning task's record); None: computed here.
    threads : int, optional
        Threads to predict on; None: the library model's ``n_jobs``, else every core.
    enabled : bool
        The configuration's switch (:func:`compiled_inference_enabled` also reads the env).

    Returns
    -------
    ClassifierProtocol
        A :class:`CompiledClassifier`, or ``model`` itself, with the reason logged
        (a WARNING, once per process and reason) when a tree model cannot use its
        compiled trees. A regressor is returned as is (a DEBUG line).
    """
    if _regressor(model):
        log.debug(
            "compiled inference: not for regressors; %s predicts itself", type(model).__name__
        )
        return model
    if not _tree_model(model):
        return model
    if not compiled_inference_enabled(enabled):
        _once("disabled", "compiled inference disabled: the library predicts", logging.INFO)
        return model
    try:
        trees = _load_or_compile(model, Path(model_path), model_sha256)
    except ImportError as exc:
        _once(
            f"import:{exc}",
            f"compiled inference unavailable ({exc}): the library predicts, more slowly",
        )
        return model
    except UnsupportedModelError as exc:
        _once(f"unsupported:{exc}", f"compiled inference: {exc}: the library predicts")
        return model
    except (OSError, ValueError, KeyError) as exc:
        _once(
            f"bad:{model_path}:{exc}",
            f"compiled inference: {exc} ({artefact_path(Path(model_path))}): the library predicts",
        )
        return model
    if threads is None:
        jobs = model.get_params().get("n_jobs")
        threads = int(jobs) if jobs and jobs > 0 else (os.cpu_count() or 1)
    log.info("predicting with the compiled %s trees (%d threads)", trees.kind, threads)
    return CompiledClassifier(model, trees, threads)


def _load_or_compile(model: Any, model_path: Path, model_sha256: str | None) -> CompiledTrees:
    """The artefact's trees when bound to this model file; compiled now when there is none."""
    from sitsmap.io.compiled import file_sha256, read_compiled

    _kernels()  # ImportError when numba is missing
    read = read_compiled(model_path)
    if read is None:
        log.info("no compiled trees beside %s (an older model): compiling them now", model_path)
        return compile_trees(model)
    header, arrays = read
    if header.get("format") == COMPILED_FORMAT and header.get("version") != COMPILED_VERSION:
        log.info("compiled trees of another sitsmap version beside %s: compiling now", model_path)
        return compile_trees(model)
    digest = model_sha256 or file_sha256(model_path)
    if header.get("model_sha256") != digest.lower():
        raise ValueError("compiled trees are stale (made for another model file)")
    trees = CompiledTrees.from_arrays(header, arrays)
    if [int(c) for c in trees.classes] != [int(c) for c in np.asarray(model.classes_)]:
        raise ValueError("compiled trees' classes differ from the model's")
    return trees


def _kernels() -> Any:
    """The numba kernels' module (imported on first use: numba compiles them then)."""
    return importlib.import_module("sitsmap.learning.compiled_kernels")


def _once(key: str, message: str, level: int = logging.WARNING) -> None:
    """Log ``message`` the first time ``key`` is seen in this process."""
    if key not in _warned:
        _warned.add(key)
        log.log(level, "%s", message)


def describe(trees: CompiledTrees) -> dict[str, Sequence[int] | int | str]:
    """A short description of compiled trees, for logs and benchmarks."""
    return {
        "kind": trees.kind,
        "trees": int(trees.roots.size),
        "nodes": int(trees.nodes.shape[0]),
        "leaves": int(trees.leaf_start.size - 1),
        "leaf_values": int(trees.values.size),
        "block_rows": trees.block_rows,
        "classes": [int(c) for c in trees.classes],
    }
