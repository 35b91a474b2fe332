"""A network's prediction path: the same outputs as a plain forward pass, no autograd,
cache-sized blocks, and the task's thread budget (issue 15)."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from sitsmap.learning.deep.layout import TemporalLayout, raw_slot_name
from sitsmap.learning.deep.regressor import DeepRegressor
from sitsmap.learning.deep.trainer import PREDICT_ROWS_PER_THREAD, DeepClassifier
from sitsmap.learning.persistence import use_threads

N_CHANNELS, N_DATES, N_SLOTS = 3, 8, 10
CODES = (2, 5, 11)
SMALL = {
    "MLPClassifier": {"hidden": (16, 8)},
    "TempCNN": {"n_filters": 4, "hidden": 8},
    "LTAE": {"d_model": 16, "n_head": 4, "d_k": 4, "mlp": (16,), "decoder": (8,)},
    "Transformer": {"d_model": 16, "n_head": 4, "n_layers": 1, "dim_feedforward": 16},
}
N_ROWS = 2 * PREDICT_ROWS_PER_THREAD + 37
"""Rows predicted: two whole blocks on one thread and a partial one."""


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def grid_rows(n, seed=0):
    """Random band-major grid rows and class codes (what the weights learn is irrelevant)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(5.0, 2.0, (n, N_CHANNELS * N_DATES)).astype(np.float32)
    return X, rng.choice(CODES, n)


def raw_rows(n, seed=0):
    """Raw-dates rows: each pixel 2 to ``N_SLOTS`` clear days, the other slots padding."""
    rng = np.random.default_rng(seed)
    series = np.zeros((n, N_SLOTS, N_CHANNELS), np.float32)
    days = np.zeros((n, N_SLOTS), np.float32)
    valid = np.zeros((n, N_SLOTS), bool)
    for i in range(n):
        count = rng.integers(2, N_SLOTS + 1)
        days[i, :count] = np.sort(rng.choice(np.arange(1, 366), count, replace=False))
        series[i, :count] = rng.normal(0.5, 0.2, (count, N_CHANNELS))
        valid[i, :count] = True
    layout = TemporalLayout(N_CHANNELS, N_SLOTS, raw=True)
    X = layout.join(torch.from_numpy(series), torch.from_numpy(days), torch.from_numpy(valid))
    return X.numpy(), rng.choice(CODES, n)


def raw_names():
    variables = [f"b{c}" for c in range(N_CHANNELS)] + ["doy", "valid"]
    return [raw_slot_name("sentinel2", v, k) for v in variables for k in range(N_SLOTS)]


def fitted(dl_name, raw=False, cls=DeepClassifier, **kwargs):
    X, y = (raw_rows if raw else grid_rows)(120)
    if cls is DeepRegressor:
        y = y.astype(np.float64)
    model = cls(
        dl_name,
        epochs=2,
        learning_rates=(1e-2,),
        batch_sizes=(32,),
        n_dates=None if raw or dl_name == "MLPClassifier" else N_DATES,
        dl_parameters=SMALL[dl_name],
        feature_names=raw_names() if raw else None,
        device="cpu",
        seed=3,
        **kwargs,
    )
    return model.fit(X, y)


def reference_logits(model, X):
    """The network on all rows at once, standardised in numpy: the plain forward pass."""
    standardised = (X - model.mean_) / model.scale_
    with torch.no_grad():
        return model.module_.eval()(torch.from_numpy(standardised))


@pytest.mark.parametrize(
    ("dl_name", "raw"),
    [
        ("MLPClassifier", False),
        ("TempCNN", False),
        ("LTAE", False),
        ("Transformer", False),
        ("LTAE", True),
        ("Transformer", True),
    ],
)
def test_probabilities_are_the_plain_forward_pass(dl_name, raw):
    model = fitted(dl_name, raw)
    X, _ = (raw_rows if raw else grid_rows)(N_ROWS, seed=1)
    expected = torch.softmax(reference_logits(model, X), dim=1).numpy()
    probabilities = model.predict_proba(X)
    assert probabilities.dtype == np.float32 and probabilities.shape == expected.shape
    np.testing.assert_allclose(probabilities, expected, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(probabilities.argmax(axis=1), expected.argmax(axis=1))
    np.testing.assert_array_equal(model.predict(X), model.classes_[expected.argmax(axis=1)])


def test_a_row_does_not_depend_on_its_block():
    model = fitted("TempCNN")
    X, _ = grid_rows(N_ROWS, seed=2)
    whole = model.predict_proba(X)
    one_by_one = np.concatenate([model.predict_proba(X[i : i + 1]) for i in range(0, 700, 7)])
    np.testing.assert_allclose(one_by_one, whole[0:700:7], rtol=0, atol=1e-6)


def test_regressor_predicts_through_the_same_path():
    model = fitted("LTAE", cls=DeepRegressor)
    X, _ = grid_rows(N_ROWS, seed=1)
    logits = reference_logits(model, X)[:, 0].double().numpy()
    expected = (logits * model.target_scale_ + model.target_mean_).astype(np.float32)
    np.testing.assert_allclose(model.predict(X), expected, rtol=1e-6, atol=1e-6)


def test_imputed_values_replace_non_finite_features():
    model = fitted("MLPClassifier", impute="mean")
    X, _ = grid_rows(N_ROWS, seed=1)
    X[::5, 3] = np.nan
    X[1::7, 10] = np.inf
    filled = np.where(np.isfinite(X), X, model.impute_values_)
    expected = torch.softmax(reference_logits(model, filled), dim=1).numpy()
    np.testing.assert_allclose(model.predict_proba(X), expected, rtol=0, atol=1e-6)
    assert np.isfinite(X[::5, 3]).sum() == 0  # the caller's rows are left as they were


class Spy:
    """A forward hook noting, per call, the block's rows, threads and autograd state."""

    def __init__(self, module):
        self.calls = []
        self.handle = module.register_forward_hook(self)

    def __call__(self, module, inputs, output):
        self.calls.append(
            {
                "rows": len(inputs[0]),
                "threads": torch.get_num_threads(),
                "inference": torch.is_inference_mode_enabled(),
                "grad": torch.is_grad_enabled(),
                "requires_grad": output.requires_grad,
            }
        )


def test_no_autograd_graph_is_built():
    model = fitted("LTAE")
    X, _ = grid_rows(N_ROWS, seed=1)
    spy = Spy(model.module_)
    model.predict_proba(X)
    spy.handle.remove()
    assert spy.calls
    assert all(c["inference"] and not c["grad"] and not c["requires_grad"] for c in spy.calls)


def test_blocks_follow_the_thread_budget():
    model = fitted("MLPClassifier")
    X, _ = grid_rows(5 * PREDICT_ROWS_PER_THREAD + 3, seed=1)
    spy = Spy(model.module_)
    use_threads(model, 2)
    model.predict_proba(X)
    assert [c["rows"] for c in spy.calls] == [1024, 1024, 512 + 3]
    assert {c["threads"] for c in spy.calls} == {2}
    spy.calls.clear()
    use_threads(model, 1)
    model.predict_proba(X)
    assert [c["rows"] for c in spy.calls] == [512] * 5 + [3]
    assert {c["threads"] for c in spy.calls} == {1}
    spy.handle.remove()


def test_budget_holds_in_a_worker_thread():
    """Dask runs the classification in worker threads: they see the process's budget."""
    model = fitted("MLPClassifier")
    X, _ = grid_rows(600, seed=1)
    spy = Spy(model.module_)
    use_threads(model, 1)
    with ThreadPoolExecutor(1) as pool:
        pool.submit(model.predict_proba, X).result()
    spy.handle.remove()
    assert {c["threads"] for c in spy.calls} == {1}
    assert [c["rows"] for c in spy.calls] == [512, 88]
