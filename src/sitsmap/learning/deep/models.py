"""PyTorch networks for pixel time series: a multilayer perceptron, TempCNN, L-TAE, Transformer.

Every network takes the chain's flat feature rows, shape ``(batch, n_features)``,
and returns class logits, shape ``(batch, n_classes)``; the trainer applies the
softmax (inside the cross-entropy loss, and in ``predict_proba``). A regression
network is the same with ``n_classes=1``: its one output is the standardised
target (:class:`~sitsmap.learning.deep.regressor.DeepRegressor`). Features are
band-major as in iota2: ``x.reshape(batch, n_bands, n_dates)`` gives each
channel's time series, which is how TempCNN reads them.

L-TAE and the Transformer read their rows through
:meth:`~sitsmap.learning.deep.layout.TemporalLayout.split`, so they also take the
raw-dates layout (``raw=True``): each pixel's own observation days feed the
positional encoding, and the padding slots are masked out of the attention. The
MLP and TempCNN need every pixel on the same dates, so they refuse it.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from sitsmap.errors import ConfigError, InputDataError
from sitsmap.learning.deep.layout import TemporalLayout

__all__ = [
    "LTAE",
    "NETWORKS",
    "RAW_NETWORKS",
    "MLPClassifier",
    "TempCNN",
    "Transformer",
    "batched_sinusoid_encoding",
    "build_network",
    "check_raw_support",
    "sinusoid_encoding",
]


def _hidden_layers(
    n_inputs: int, sizes: Sequence[int], dropout: float = 0.0, batch_norm: bool = False
) -> list[nn.Module]:
    """Return Linear (+ BatchNorm) + ReLU (+ Dropout) layers of the given widths."""
    layers: list[nn.Module] = []
    width = n_inputs
    for size in sizes:
        layers.append(nn.Linear(width, size))
        if batch_norm:
            layers.append(nn.BatchNorm1d(size))
        layers.append(nn.ReLU())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = size
    return layers


def _dense_stack(
    n_inputs: int,
    hidden: Sequence[int],
    n_outputs: int,
    dropout: float = 0.0,
    batch_norm: bool = False,
) -> nn.Sequential:
    """Return hidden layers (see :func:`_hidden_layers`) and a last Linear to ``n_outputs``."""
    width = hidden[-1] if hidden else n_inputs
    layers = _hidden_layers(n_inputs, hidden, dropout, batch_norm)
    return nn.Sequential(*layers, nn.Linear(width, n_outputs))


class MLPClassifier(nn.Module):
    """Fully connected network: the reference deep classifier (481→240→69→69→23).

    Parameters
    ----------
    n_features : int
        Length of a feature row.
    n_classes : int
        Number of classes (outputs).
    hidden : sequence of int
        Widths of the hidden layers, each followed by a ReLU.
    dropout : float
        Dropout rate after each hidden layer (0 disables it).
    """

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        hidden: Sequence[int] = (240, 69, 69),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.layers = _dense_stack(n_features, tuple(hidden), n_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the logits of ``x`` (batch, n_features)."""
        return self.layers(x)


class TempCNN(nn.Module):
    """Temporal convolutional network of Pelletier, Webb and Petitjean (2019).

    Three 1-D convolutions along time (each with batch normalisation, ReLU and
    dropout), a dense layer, then the output layer.

    Parameters
    ----------
    n_bands : int
        Channels per date (spectral bands and indices).
    n_dates : int
        Dates of the temporal grid.
    n_classes : int
        Number of classes.
    n_filters : int
        Filters of each convolution.
    kernel_size : int
        Temporal width of the convolutions (``same`` padding keeps the length).
    hidden : int
        Width of the dense layer.
    dropout : float
        Dropout rate after every block.
    """

    def __init__(
        self,
        n_bands: int,
        n_dates: int,
        n_classes: int,
        n_filters: int = 64,
        kernel_size: int = 5,
        hidden: int = 256,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.n_bands = n_bands
        self.n_dates = n_dates
        blocks: list[nn.Module] = []
        channels = n_bands
        for _ in range(3):
            blocks += [
                nn.Conv1d(channels, n_filters, kernel_size, padding="same"),
                nn.BatchNorm1d(n_filters),
                nn.ReLU(),
                nn.Dropout(dropout),
            ]
            channels = n_filters
        self.convolutions = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            _dense_stack(n_filters * n_dates, (hidden,), n_classes, dropout, batch_norm=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the logits of ``x`` (batch, n_bands * n_dates), band-major."""
        series = x.reshape(x.shape[0], self.n_bands, self.n_dates)
        return self.classifier(self.convolutions(series))


def _sinusoid_exponents(dim: int) -> torch.Tensor:
    """Return ``2 * (i // 2) / dim`` for the columns ``i`` of a sinusoidal encoding (float64)."""
    return 2 * (torch.arange(dim, dtype=torch.float64) // 2) / dim


def sinusoid_encoding(positions: torch.Tensor, dim: int, period: float = 1000.0) -> torch.Tensor:
    """Return the transformer positional encoding of ``positions``, shape ``(len, dim)``.

    Column ``i`` is ``sin`` (even ``i``) or ``cos`` (odd ``i``) of
    ``position / period ** (2 * (i // 2) / dim)``.
    """
    exponents = _sinusoid_exponents(dim)
    angles = positions.to(torch.float64)[:, None] / period ** exponents[None, :]
    table = torch.where(torch.arange(dim) % 2 == 0, torch.sin(angles), torch.cos(angles))
    return table.to(torch.float32)


def batched_sinusoid_encoding(
    days: torch.Tensor, dim: int, period: float = 1000.0, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Return :func:`sinusoid_encoding` of each sample's days, shape ``(batch, T, dim)``.

    Parameters
    ----------
    days : Tensor
        ``(batch, T)`` positions (days of year), on any device.
    dim, period : int, float
        As in :func:`sinusoid_encoding`.
    dtype : torch.dtype, optional
        Of the result; float32 when omitted.

    Notes
    -----
    Computed in float64, as :func:`sinusoid_encoding` is, so a row of ``days`` gives
    exactly that function's table.
    """
    exponents = _sinusoid_exponents(dim).to(days.device)
    angles = days.to(torch.float64)[..., None] / period**exponents
    even = torch.arange(dim, device=days.device) % 2 == 0
    table = torch.where(even, torch.sin(angles), torch.cos(angles))
    return table.to(dtype or torch.float32)


def _with_one_valid(valid: torch.Tensor) -> torch.Tensor:
    """Return ``valid`` with slot 0 marked valid in the rows that have no valid slot.

    A row without any observation would otherwise mask every key: the softmax of
    all ``-inf`` scores is NaN. Its slot 0 holds padding zeros, so the network's
    output for it is finite and meaningless, as a constant row would be.
    """
    empty = ~valid.any(dim=1, keepdim=True)  # no `if empty.any()`: no device sync
    return torch.cat([valid[:, :1] | empty, valid[:, 1:]], dim=1)


class _MasterQueryAttention(nn.Module):
    """Multi-head attention whose query is one learnt vector per head (L-TAE).

    Keys come from a linear map of the inputs; values are the inputs themselves,
    split into ``n_head`` groups of channels, one per head.
    """

    def __init__(self, d_model: int, n_head: int, d_k: int, dropout: float) -> None:
        super().__init__()
        self.n_head = n_head
        self.d_k = d_k
        self.query = nn.Parameter(torch.empty(n_head, d_k))
        self.key = nn.Linear(d_model, n_head * d_k)
        nn.init.normal_(self.query, mean=0.0, std=math.sqrt(2.0 / d_k))
        nn.init.normal_(self.key.weight, mean=0.0, std=math.sqrt(2.0 / d_k))
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """Pool ``h`` (batch, T, d_model) over time into one ``(batch, d_model)`` vector each.

        ``valid`` (batch, T), when given, masks the invalid dates out: their scores
        are ``-inf`` before the softmax, so they get no weight (every row needs a
        valid date, see :func:`_with_one_valid`).
        """
        batch, n_dates, d_model = h.shape
        keys = self.key(h).reshape(batch, n_dates, self.n_head, self.d_k)
        scores = torch.einsum("hd,bthd->bht", self.query, keys) / math.sqrt(self.d_k)
        if valid is not None:
            scores = scores.masked_fill(~valid[:, None, :], float("-inf"))
        weights = self.dropout(torch.softmax(scores, dim=-1))
        values = h.reshape(batch, n_dates, self.n_head, d_model // self.n_head)
        return torch.einsum("bht,bthc->bhc", weights, values).reshape(batch, d_model)


def _grid_days(name: str, n_dates: int, day_of_year: Sequence[float] | None) -> list[float]:
    """Return the grid's day of each date (``0, 1, …`` when omitted), ``n_dates`` of them."""
    days = list(range(n_dates)) if day_of_year is None else list(day_of_year)
    if len(days) != n_dates:
        raise ConfigError(f"{name}: {len(days)} days of year given for {n_dates} dates")
    return days


def _restore_input_norm(
    network: nn.Module, state: dict[str, torch.Tensor], prefix: str, *_: Any
) -> None:
    """Put L-TAE's input normalisation back when loading a state saved with it.

    States saved before ``input_norm`` defaulted to False hold
    ``input_norm.weight`` and ``input_norm.bias``; they load into a network built
    with today's defaults and predict as they did (a ``load_state_dict`` pre-hook).
    """
    weight = state.get(f"{prefix}input_norm.weight")
    if weight is not None and isinstance(network.input_norm, nn.Identity):
        norm = nn.LayerNorm(weight.shape[0])
        network.input_norm = norm.to(device=weight.device, dtype=weight.dtype)


class LTAE(nn.Module):
    """Lightweight Temporal Attention Encoder (Garnot and Landrieu, 2020), on single pixels.

    Each date's channels are projected to ``d_model``, a
    sinusoidal encoding of the acquisition day is added, and a multi-head
    attention with one learnt master query per head pools the dates. An MLP
    and a decoder MLP give the logits. (The pixel-set encoder of the paper is
    not used: the chain classifies single pixels.)

    The default sizes are half the paper's (which attends over 128-wide
    pixel-set embeddings, not a pixel's dozen channels): each head still reads
    8 channels with an 8-wide encoding of the day, but the network learns in
    the first epochs, before the one-cycle schedule's warm-up is over, and
    overfits a few training parcels less. On the real 31UDS patch (17
    parcels) that took the pooled OA of 3 seeds from 0.62 to 0.76. A model saved
    with the former defaults (``d_model`` 128, ``n_head`` 16, ``mlp`` (128,),
    ``decoder`` (64, 32)) loads with those given as ``dl_parameters``.

    The projected dates are not layer-normalised by default (``input_norm``):
    the paper normalises its pixel-set embeddings, but here the projection is
    linear, and ``LayerNorm(W x + b)`` hardly changes when a date's standardised
    bands ``x`` are scaled, so the network lost most of each date's brightness.
    Measured with the default training (``bench/learners.py``'s folds, one
    thread), pooled OA of the held-out folds, seeds 0-2 / 0-4, with → without:
    small synthetic world (11 classes, 3 grouped folds) 0.916, 0.950, 0.956 →
    0.974, 0.996, 0.959 (mean 0.940 → 0.976; random forest 0.969); its raw
    dates, seed 0, 0.862 → 0.895; real 31UDS patch (3 classes, 17 parcels, 4
    folds) 0.690, 0.830, 0.766, 0.623, 0.822 → 0.722, 0.813, 0.700, 0.671,
    0.725 (mean 0.746 ± 0.079 → 0.726 ± 0.048, paired −2.0 ± 2.8 points, within
    the seed noise; random forest 0.686). A model saved with the normalisation
    loads as it was saved (its state holds the norm's weights, see
    :func:`_restore_input_norm`).

    Parameters
    ----------
    n_bands : int
        Channels per date.
    n_dates : int
        Dates of the temporal grid, or observation slots of the raw layout.
    n_classes : int
        Number of classes.
    day_of_year : sequence of int, optional
        Day of each grid date (day of year, or days since the first date) used by
        the positional encoding; ``0, 1, 2, …`` when omitted. Unused with ``raw``.
    d_model : int
        Width of the projected inputs; a multiple of ``n_head``.
    n_head : int
        Attention heads.
    d_k : int
        Width of queries and keys.
    mlp : sequence of int
        Widths of the MLP after the attention.
    decoder : sequence of int
        Hidden widths of the decoder.
    dropout : float
        Dropout rate on the attention weights and after the MLP.
    period : float
        Period ``T`` of the positional encoding.
    raw : bool
        Rows in the raw-dates layout (see :mod:`~sitsmap.learning.deep.layout`):
        each sample's days are encoded, and its invalid slots get no attention.
    input_norm : bool
        Layer-normalise each date's projected channels (the paper's choice, and
        the default before: see above).
    """

    def __init__(
        self,
        n_bands: int,
        n_dates: int,
        n_classes: int,
        day_of_year: Sequence[int] | None = None,
        d_model: int = 64,
        n_head: int = 8,
        d_k: int = 8,
        mlp: Sequence[int] = (64,),
        decoder: Sequence[int] = (32,),
        dropout: float = 0.2,
        period: float = 1000.0,
        raw: bool = False,
        input_norm: bool = False,
    ) -> None:
        super().__init__()
        if d_model % n_head:
            raise ConfigError(f"LTAE: d_model ({d_model}) must be a multiple of n_head ({n_head})")
        days = _grid_days("LTAE", n_dates, None if raw else day_of_year)
        self.n_bands = n_bands
        self.n_dates = n_dates
        self.n_head = n_head
        self.period = period
        # the grid's days live in the positional_encoding buffer, computed once; the
        # layout gives the series (and, raw, each sample's days and validity)
        self.layout = TemporalLayout(n_bands, n_dates, raw)
        self.input_projection = nn.Linear(n_bands, d_model)
        self.input_norm = nn.LayerNorm(d_model) if input_norm else nn.Identity()
        encoding = sinusoid_encoding(torch.tensor(days), d_model // n_head, period)
        self.register_buffer("positional_encoding", encoding.repeat(1, n_head), persistent=False)
        self.attention = _MasterQueryAttention(d_model, n_head, d_k, dropout)
        mlp = tuple(mlp)
        self.mlp = nn.Sequential(*_hidden_layers(d_model, mlp, batch_norm=True))
        width = mlp[-1] if mlp else d_model
        self.dropout = nn.Dropout(dropout)
        self.output_norm = nn.LayerNorm(width)
        self.decoder = _dense_stack(width, tuple(decoder), n_classes, batch_norm=True)
        self.register_load_state_dict_pre_hook(_restore_input_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the logits of rows ``x`` (batch, n_features) of the network's layout."""
        series, days, valid = self.layout.split(x)
        h = self.input_norm(self.input_projection(series))
        if self.layout.raw:
            valid = _with_one_valid(valid)
            dim = self.positional_encoding.shape[1] // self.n_head
            encoding = batched_sinusoid_encoding(days, dim, self.period, h.dtype)
            h = (h + encoding.repeat(1, 1, self.n_head)).masked_fill(~valid[..., None], 0.0)
            pooled = self.attention(h, valid)
        else:  # every date valid: no mask, exactly the network of before raw dates
            pooled = self.attention(h + self.positional_encoding)
        h = self.mlp(pooled)
        return self.decoder(self.output_norm(self.dropout(h)))


class Transformer(nn.Module):
    """Transformer encoder over the dates of single pixels (after Rußwurm et al., 2020).

    As BreizhCrops' ``TransformerModel``: each date's channels are projected to
    ``d_model`` and normalised, a sinusoidal encoding of the day of year is
    added, a stack of self-attention layers (``torch.nn.TransformerEncoder``,
    pre-normalised, which trains steadily without a warm-up on small data)
    mixes the dates, the valid dates are pooled and a linear layer gives the
    logits.

    Parameters
    ----------
    n_bands : int
        Channels per date.
    n_dates : int
        Dates of the temporal grid, or observation slots of the raw layout.
    n_classes : int
        Number of classes.
    day_of_year : sequence of int, optional
        Day of each grid date, for the positional encoding; ``0, 1, 2, …`` when
        omitted. Unused with ``raw``.
    d_model : int
        Width of the encoder; a multiple of ``n_head``.
    n_head : int
        Attention heads of each layer.
    n_layers : int
        Encoder layers.
    dim_feedforward : int
        Width of each layer's feed-forward block.
    dropout : float
        Dropout rate inside the encoder layers.
    pooling : {"max", "mean"}
        Pooling of the encoded valid dates into one vector.
    period : float
        Period ``T`` of the positional encoding.
    raw : bool
        Rows in the raw-dates layout: each sample's days are encoded, and its
        invalid slots are masked out of the attention and of the pooling.
    """

    def __init__(
        self,
        n_bands: int,
        n_dates: int,
        n_classes: int,
        day_of_year: Sequence[int] | None = None,
        d_model: int = 64,
        n_head: int = 4,
        n_layers: int = 3,
        dim_feedforward: int = 128,
        dropout: float = 0.1,
        pooling: str = "max",
        period: float = 1000.0,
        raw: bool = False,
    ) -> None:
        super().__init__()
        if d_model % n_head:
            raise ConfigError(
                f"Transformer: d_model ({d_model}) must be a multiple of n_head ({n_head})"
            )
        if pooling not in POOLINGS:
            raise ConfigError(f"Transformer: unknown pooling {pooling!r}; known: {POOLINGS}")
        days = _grid_days("Transformer", n_dates, None if raw else day_of_year)
        self.pooling = pooling
        self.period = period
        self.layout = TemporalLayout(n_bands, n_dates, raw)  # grid days: in the buffer
        self.input_projection = nn.Linear(n_bands, d_model)
        self.input_norm = nn.LayerNorm(d_model)
        encoding = sinusoid_encoding(torch.tensor(days), d_model, period)
        self.register_buffer("positional_encoding", encoding, persistent=False)
        layer = nn.TransformerEncoderLayer(
            d_model, n_head, dim_feedforward, dropout, batch_first=True, norm_first=True
        )
        # nested tensors would skip the padded slots, but not with norm_first layers
        self.encoder = nn.TransformerEncoder(
            layer, n_layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False
        )
        self.head = nn.Linear(d_model, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the logits of rows ``x`` (batch, n_features) of the network's layout."""
        series, days, valid = self.layout.split(x)
        h = self.input_norm(self.input_projection(series))
        if self.layout.raw:
            valid = _with_one_valid(valid)
            encoding = batched_sinusoid_encoding(
                days, self.positional_encoding.shape[1], self.period, h.dtype
            )
            h = (h + encoding).masked_fill(~valid[..., None], 0.0)
            h = self.encoder(h, src_key_padding_mask=~valid)
            return self.head(_masked_pool(h, valid, self.pooling))
        h = self.encoder(h + self.positional_encoding)
        return self.head(h.amax(dim=1) if self.pooling == "max" else h.mean(dim=1))


POOLINGS = ("max", "mean")
"""Poolings of the Transformer's encoded dates."""


def _masked_pool(h: torch.Tensor, valid: torch.Tensor, pooling: str) -> torch.Tensor:
    """Pool ``h`` (batch, T, d) over its valid dates (``valid``: batch, T) by max or mean."""
    mask = valid[..., None]
    if pooling == "max":
        return h.masked_fill(~mask, float("-inf")).amax(dim=1)
    count = mask.sum(dim=1).clamp(min=1).to(h.dtype)
    return h.masked_fill(~mask, 0.0).sum(dim=1) / count  # not h * mask: NaN * 0 is NaN


RAW_NETWORKS = ("LTAE", "Transformer")
"""The networks that read the raw-dates layout (the others need aligned dates)."""


NETWORKS: dict[str, type[nn.Module]] = {
    "MLPClassifier": MLPClassifier,
    "TempCNN": TempCNN,
    "LTAE": LTAE,
    "Transformer": Transformer,
}
"""The networks ``deep_learning_parameters.dl_name`` can name."""


def build_network(
    dl_name: str,
    n_features: int,
    n_classes: int,
    n_dates: int | None = None,
    day_of_year: Sequence[int] | None = None,
    dl_parameters: dict[str, Any] | None = None,
    raw: bool = False,
) -> nn.Module:
    """Build the network ``dl_name`` for rows of ``n_features`` features.

    Parameters
    ----------
    dl_name : str
        A key of :data:`NETWORKS`.
    n_features, n_classes : int
        Input and output widths (``n_classes`` 1: a regression network).
    n_dates : int, optional
        Dates of the temporal grid, or observation slots of the raw layout;
        needed by TempCNN, LTAE and the Transformer (taken from ``day_of_year``
        when omitted, gap-filled layout only).
    day_of_year : sequence of int, optional
        Day of each grid date, for the positional encoding of LTAE and the
        Transformer (unused with ``raw``: the rows hold their days).
    dl_parameters : dict, optional
        Extra keyword arguments of the network's constructor.
    raw : bool
        Rows in the raw-dates layout (:mod:`~sitsmap.learning.deep.layout`):
        ``n_dates`` slots of ``n_features // n_dates - 2`` channels, a day and a
        validity flag; only the networks of :data:`RAW_NETWORKS` read it.

    Returns
    -------
    torch.nn.Module
        The network, in training mode, on the CPU.

    Raises
    ------
    ConfigError
        On an unknown network, an unknown parameter, a network that cannot
        read the raw layout, or features that do not split into whole time series.
    """
    if dl_name not in NETWORKS:
        raise ConfigError(f"unknown network {dl_name!r}; known: {sorted(NETWORKS)}")
    check_raw_support(dl_name, raw)
    network = NETWORKS[dl_name]
    params = dict(dl_parameters or {})
    _check_parameters(network, params)
    if network is MLPClassifier:
        return MLPClassifier(n_features, n_classes, **params)
    if n_dates is None and day_of_year is not None and not raw:
        n_dates = len(day_of_year)
    layout = _layout(dl_name, n_features, n_dates, raw)
    if dl_name in RAW_NETWORKS:
        params.setdefault("day_of_year", None if raw else day_of_year)
        params["raw"] = raw
    return network(layout.n_channels, layout.n_dates, n_classes, **params)


def check_raw_support(dl_name: str, raw: bool) -> None:
    """Raise ConfigError if ``raw`` and the network ``dl_name`` needs aligned dates."""
    if raw and dl_name not in RAW_NETWORKS:
        raise ConfigError(
            f"{dl_name} needs every pixel on the same dates (gap-filled features), but the "
            f"features are raw dates: use {' or '.join(RAW_NETWORKS)}, or set "
            "sensors_data_interpolation.use_gapfilling: true"
        )


def _layout(dl_name: str, n_features: int, n_dates: int | None, raw: bool) -> TemporalLayout:
    """Return the layout of ``n_features`` features over ``n_dates`` dates or raw slots.

    Raises
    ------
    ConfigError
        If the number of dates is unknown or does not split the features into
        whole time series.
    """
    try:
        if n_dates:
            return TemporalLayout.of(n_features, n_dates, raw)
    except InputDataError:
        pass
    kind = "observation slots, dividing the" if raw else "dates, dividing the"
    extra = " into (channels + 2) x slots" if raw else ""
    raise ConfigError(
        f"{dl_name} needs the number of {kind} {n_features} features{extra}; got {n_dates}"
    )


def _check_parameters(network: type[nn.Module], params: dict[str, Any]) -> None:
    """Raise ConfigError if ``params`` holds a key the network's constructor does not take."""
    fixed = {"self", "n_features", "n_bands", "n_dates", "n_classes", "raw"}  # the data's
    known = set(inspect.signature(network.__init__).parameters) - fixed
    unknown = set(params) - known
    if unknown:
        raise ConfigError(
            f"unknown dl_parameters {sorted(unknown)} for {network.__name__}; "
            f"known: {sorted(known)}"
        )
