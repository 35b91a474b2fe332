"""network_inference: a network's ``predict_proba`` now against the former forward pass.

Each network (MLP, TempCNN, L-TAE, Transformer; default sizes) is trained for one epoch
on random rows of 13 channels x 37 dates (481 features; training quality is irrelevant
here), then classifies random rows in the classification step's chunks of 16 384 rows
(``PREDICT_PIXELS``), on one torch thread:

* current: the former ``DeepNetwork._forward``, reproduced below: 8192-row blocks,
  ``(batch - mean) / scale``, ``torch.inference_mode``, softmax;
* new: ``DeepClassifier.predict_proba`` (cache-sized blocks, see
  ``trainer.PREDICT_ROWS_PER_THREAD``);
* torch.compile: the new path's blocks through ``torch.compile(module)`` (its compile
  time is reported; skipped with ``SITSMAP_BENCH_COMPILE=0``);
* onnxruntime: the network with its standardisation and softmax exported to ONNX and run
  by ONNX Runtime (one intra-op thread) in ``bench/.venvs/onnxruntime``, a child process
  that imports torch and sitsmap from this interpreter's environment (a peer only, never
  a sitsmap dependency; skipped when it cannot be installed).

Passes are interleaved, best of 3. ratio = geometric mean over the networks of
new / current pixels per second; goal >= 1.2, and the new path must give exactly the
current classes (probabilities within 1e-6). The details give pixels per second per
core of every variant, the largest probability difference to current and the share of
pixels whose class differs.
"""

from __future__ import annotations

import logging
import math
import os
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import common

NAME, GOAL = "network_inference", 1.2
N_CHANNELS, N_DATES, N_CLASSES = 13, 37, 10
N_TRAIN = 2000
CHUNK = 16384
"""Rows per ``predict_proba`` call, as the classification step's ``PREDICT_PIXELS``."""
ROWS = {"MLPClassifier": 196_608, "TempCNN": 49_152, "LTAE": 98_304, "Transformer": 16_384}
"""Rows classified per pass: ~200 k for the MLP, fewer for the slower networks so that a
pass takes seconds, not minutes, on one core."""
ROUNDS = 3
FORMER_ROWS = 8192
"""The former ``FORWARD_ROWS["cpu"]``."""
ONNX_ROWS = 512
"""Rows per ONNX Runtime run (cache-sized blocks are faster there too)."""
ONNX_REQUIREMENTS = ["onnx", "onnxruntime", "onnxscript"]
PROBABILITY_TOLERANCE = 1e-6
PROTOCOL = "@@network_inference "
"""Prefix of the ONNX child's answers on its stdout (the exporter prints there too)."""


def fitted(dl_name: str, seed: int = 0):
    """A network trained one epoch on random grid rows (its weights are what matter)."""
    from sitsmap.learning.deep.trainer import DeepClassifier

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N_TRAIN, N_CHANNELS * N_DATES), dtype=np.float32)
    y = rng.integers(0, N_CLASSES, N_TRAIN)
    model = DeepClassifier(
        dl_name=dl_name,
        epochs=1,
        learning_rates=(1e-3,),
        batch_sizes=(256,),
        n_dates=None if dl_name == "MLPClassifier" else N_DATES,
        seed=seed,
        device="cpu",
    )
    return model.fit(X, y)


def rows(dl_name: str, seed: int = 1) -> np.ndarray:
    """Random rows to classify (the speed does not depend on the values)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((ROWS[dl_name], N_CHANNELS * N_DATES), dtype=np.float32)


def former_predict_proba(model, X: np.ndarray) -> np.ndarray:
    """The former ``DeepClassifier.predict_proba`` (``_forward`` before issue 15)."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    mean, scale = torch.from_numpy(model.mean_), torch.from_numpy(model.scale_)
    out = np.empty((len(X), len(model.classes_)), dtype=np.float32)
    model.module_.eval()
    with torch.inference_mode():
        for start in range(0, len(X), FORMER_ROWS):
            batch = torch.from_numpy(X[start : start + FORMER_ROWS])
            result = torch.softmax(model.module_((batch - mean) / scale), dim=1)
            out[start : start + len(batch)] = result.numpy()
    return out


def compiled_predict_proba(model, module: Callable, X: np.ndarray) -> np.ndarray:
    """The new path's blocks through a compiled ``module``."""
    from sitsmap.learning.deep.trainer import _predict_rows

    mean, scale = torch.from_numpy(model.mean_), torch.from_numpy(model.scale_)
    out = np.empty((len(X), len(model.classes_)), dtype=np.float32)
    block = _predict_rows(torch.device("cpu"))
    with torch.inference_mode():
        features, results = torch.from_numpy(X), torch.from_numpy(out)
        for start in range(0, len(X), block):
            batch = torch.sub(features[start : start + block], mean).div_(scale)
            results[start : start + len(batch)] = torch.softmax(module(batch), dim=1)
    return out


def chunked(predict: Callable[[np.ndarray], np.ndarray], X: np.ndarray) -> np.ndarray:
    """``predict`` over ``X`` in the classification step's chunks."""
    return np.concatenate([predict(X[i : i + CHUNK]) for i in range(0, len(X), CHUNK)])


# ----------------------------------------------------------------------------- ONNX peer


class _Standardised(torch.nn.Module):
    """``softmax(network((x - mean) / scale))``: the whole of ``predict_proba`` as a graph."""

    def __init__(self, model) -> None:
        super().__init__()
        self.network = model.module_.eval()
        self.register_buffer("mean", torch.from_numpy(model.mean_))
        self.register_buffer("scale", torch.from_numpy(model.scale_))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.network((x - self.mean) / self.scale), dim=1)


def onnx_python() -> tuple[Path | None, str]:
    """The ONNX Runtime venv's python, able to import torch and sitsmap from here."""
    python, reason = common.ensure_venv("onnxruntime", ONNX_REQUIREMENTS, "onnxruntime, onnx")
    if python is None:
        return None, reason
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site_packages = common.VENVS / "onnxruntime" / "lib" / version / "site-packages"
    here = sysconfig.get_paths()["purelib"]
    # addsitedir (not a plain path line) so that sitsmap's editable-install .pth is read too
    (site_packages / "sitsmap_bench.pth").write_text(f"import site; site.addsitedir({here!r})\n")
    return python, ""


def onnx_child(model_file: str, rows_file: str, out_file: str) -> None:
    """In the ONNX venv: export, then time one pass per ``run`` line read from stdin."""
    import warnings

    import onnxruntime

    warnings.filterwarnings("ignore", category=DeprecationWarning)  # the former exporter's
    torch.set_num_threads(1)
    model = torch.load(model_file, weights_only=False)
    X = np.load(rows_file)
    onnx_file = str(Path(out_file).with_suffix(".onnx"))
    began = time.perf_counter()
    # traced with autograd on: under inference_mode the Transformer takes its fused fast
    # path, an operator ONNX does not have
    torch.onnx.export(
        _Standardised(model),
        (torch.from_numpy(X[:ONNX_ROWS]),),
        onnx_file,
        input_names=["x"],
        output_names=["p"],
        dynamic_axes={"x": {0: "n"}, "p": {0: "n"}},
        dynamo=False,
    )
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(onnx_file, options, providers=["CPUExecutionProvider"])
    print(f"{PROTOCOL}ready {time.perf_counter() - began:.2f}", flush=True)

    def predict(chunk: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [
                session.run(None, {"x": chunk[i : i + ONNX_ROWS]})[0]
                for i in range(0, len(chunk), ONNX_ROWS)
            ]
        )

    out = None
    for line in sys.stdin:
        if line.strip() != "run":
            break
        began = time.perf_counter()
        out = chunked(predict, X)
        print(f"{PROTOCOL}{time.perf_counter() - began:.6f}", flush=True)
    np.save(out_file, out)


class OnnxPeer:
    """The child process running one network under ONNX Runtime, one pass per call."""

    def __init__(self, python: Path, model, X: np.ndarray, folder: Path) -> None:
        torch.save(model, folder / "model.pt")
        np.save(folder / "rows.npy", X)
        self.out_file = folder / "onnx_out.npy"
        script = str(Path(__file__).resolve())
        args = [str(folder / "model.pt"), str(folder / "rows.npy"), str(self.out_file)]
        self.child = subprocess.Popen(
            [str(python), script, "--onnx-child", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        self.export_seconds = float(self._line().split()[1])

    def _line(self) -> str:
        """The child's next protocol line, without its prefix (other output is skipped)."""
        for line in self.child.stdout:
            if line.startswith(PROTOCOL):
                return line.removeprefix(PROTOCOL)
        raise RuntimeError(f"the ONNX child ended (code {self.child.wait()})")

    def run(self) -> float:
        """Seconds of one pass."""
        self.child.stdin.write("run\n")
        self.child.stdin.flush()
        return float(self._line())

    def close(self) -> np.ndarray:
        """End the child; return its probabilities."""
        self.child.stdin.close()
        self.child.wait(timeout=120)
        return np.load(self.out_file)


# ----------------------------------------------------------------------------- measure


def measure(dl_name: str, onnx: Path | None, folder: Path) -> dict:
    """Pixels per second of each variant for one network, and their agreement."""
    model, X = fitted(dl_name), rows(dl_name)
    variants: dict[str, Callable[[], np.ndarray]] = {
        "current": lambda: chunked(lambda c: former_predict_proba(model, c), X),
        "new": lambda: chunked(model.predict_proba, X),
    }
    extra: dict = {}
    if os.environ.get("SITSMAP_BENCH_COMPILE", "1") != "0":
        began = time.perf_counter()
        compiled = torch.compile(model.module_, dynamic=False)
        compiled_predict_proba(model, compiled, X[:CHUNK])  # compiles, for the full block
        extra["compile_seconds"] = round(time.perf_counter() - began, 1)
        variants["torch.compile"] = lambda: chunked(
            lambda c: compiled_predict_proba(model, compiled, c), X
        )
    peer = None
    if onnx is not None:
        peer = OnnxPeer(onnx, model, X, folder)
        extra["onnx_export_seconds"] = round(peer.export_seconds, 1)
    seconds: dict[str, list[float]] = {key: [] for key in [*variants, "onnxruntime"]}
    outputs: dict[str, np.ndarray] = {}
    for _ in range(ROUNDS):
        for key, predict in variants.items():
            took, outputs[key] = common.timed(predict)
            seconds[key].append(took)
        if peer is not None:
            seconds["onnxruntime"].append(peer.run())
    if peer is not None:
        outputs["onnxruntime"] = peer.close()
    seconds = {key: values for key, values in seconds.items() if values}
    rates = {key: round(len(X) / min(values)) for key, values in seconds.items()}
    common.log(f"{dl_name}: " + ", ".join(f"{k} {v:,} px/s" for k, v in rates.items()))
    return {
        "rows": len(X),
        "pixels_per_second_per_core": rates,
        "new_vs_current": round(rates["new"] / rates["current"], 3),
        "seconds": {k: [round(s, 3) for s in v] for k, v in seconds.items()},
        **extra,
        **agreement(outputs),
    }


def agreement(outputs: dict[str, np.ndarray]) -> dict:
    """Largest probability difference and share of other classes, each variant vs current."""
    reference = outputs["current"]
    classes = reference.argmax(axis=1)
    return {
        "max_probability_difference": {
            k: float(np.abs(v - reference).max()) for k, v in outputs.items() if k != "current"
        },
        "other_class_share": {
            k: float((v.argmax(axis=1) != classes).mean())
            for k, v in outputs.items()
            if k != "current"
        },
    }


def main() -> None:
    """Measure and report."""
    logging.getLogger("sitsmap").setLevel(logging.ERROR)  # one epoch "does not learn": known
    torch.set_num_threads(1)
    onnx, reason = onnx_python()
    if onnx is None:
        common.log(f"ONNX Runtime left out: {reason}")
    networks: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(dir=common.WORK) as folder:
        for dl_name in ROWS:
            networks[dl_name] = measure(dl_name, onnx, Path(folder))
    ratios = [n["new_vs_current"] for n in networks.values()]
    ratio = math.exp(np.mean(np.log(ratios)))
    identical = all(
        n["other_class_share"]["new"] == 0
        and n["max_probability_difference"]["new"] <= PROBABILITY_TOLERANCE
        for n in networks.values()
    )
    headline = "; ".join(
        f"{name.removesuffix('Classifier')} {n['pixels_per_second_per_core']['current']:,}"
        f"→{n['pixels_per_second_per_core']['new']:,} px/s"
        for name, n in networks.items()
    )
    details = {
        "headline": f"{headline} (1 core); same classes: {identical}",
        "networks": networks,
        "identical_classes": identical,
        "onnxruntime": "measured" if onnx is not None else f"left out: {reason}",
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "features": f"{N_CHANNELS} channels x {N_DATES} dates",
        "chunk_rows": CHUNK,
        "rounds": ROUNDS,
    }
    common.report(NAME, ratio, GOAL, True, details, also_required=identical)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--onnx-child"]:
        onnx_child(*sys.argv[2:5])
    else:
        main()
