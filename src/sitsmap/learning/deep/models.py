"""PyTorch networks for pixel time series: a multilayer perceptron, TempCNN and L-TAE.

Every network takes the chain's flat feature rows, shape ``(batch, n_features)``,
and returns class logits, shape ``(batch, n_classes)``; the trainer applies the
softmax (inside the cross-entropy loss, and in ``predict_proba``). Features are
band-major as in iota2: ``x.reshape(batch, n_bands, n_dates)`` gives each
channel's time series, which is how TempCNN and L-TAE read them.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from sitsmap.errors import ConfigError

__all__ = ["LTAE", "NETWORKS", "MLPClassifier", "TempCNN", "build_network"]


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


def sinusoid_encoding(positions: torch.Tensor, dim: int, period: float = 1000.0) -> torch.Tensor:
    """Return the transformer positional encoding of ``positions``, shape ``(len, dim)``.

    Column ``i`` is ``sin`` (even ``i``) or ``cos`` (odd ``i``) of
    ``position / period ** (2 * (i // 2) / dim)``.
    """
    exponents = 2 * (torch.arange(dim, dtype=torch.float64) // 2) / dim
    angles = positions.to(torch.float64)[:, None] / period ** exponents[None, :]
    table = torch.where(torch.arange(dim) % 2 == 0, torch.sin(angles), torch.cos(angles))
    return table.to(torch.float32)


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

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Pool ``h`` (batch, T, d_model) over time into one ``(batch, d_model)`` vector each."""
        batch, n_dates, d_model = h.shape
        keys = self.key(h).reshape(batch, n_dates, self.n_head, self.d_k)
        scores = torch.einsum("hd,bthd->bht", self.query, keys) / math.sqrt(self.d_k)
        weights = self.dropout(torch.softmax(scores, dim=-1))
        values = h.reshape(batch, n_dates, self.n_head, d_model // self.n_head)
        return torch.einsum("bht,bthc->bhc", weights, values).reshape(batch, d_model)


class LTAE(nn.Module):
    """Lightweight Temporal Attention Encoder (Garnot and Landrieu, 2020), on single pixels.

    Each date's channels are projected to ``d_model`` and normalised, a
    sinusoidal encoding of the acquisition day is added, and a multi-head
    attention with one learnt master query per head pools the dates. An MLP
    and a decoder MLP give the logits. (The pixel-set encoder of the paper is
    not used: the chain classifies single pixels.)

    Parameters
    ----------
    n_bands : int
        Channels per date.
    n_dates : int
        Dates of the temporal grid.
    n_classes : int
        Number of classes.
    day_of_year : sequence of int, optional
        Day of each date (day of year, or days since the first date) used by the
        positional encoding; ``0, 1, 2, …`` when omitted.
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
    """

    def __init__(
        self,
        n_bands: int,
        n_dates: int,
        n_classes: int,
        day_of_year: Sequence[int] | None = None,
        d_model: int = 128,
        n_head: int = 16,
        d_k: int = 8,
        mlp: Sequence[int] = (128,),
        decoder: Sequence[int] = (64, 32),
        dropout: float = 0.2,
        period: float = 1000.0,
    ) -> None:
        super().__init__()
        if d_model % n_head:
            raise ConfigError(f"LTAE: d_model ({d_model}) must be a multiple of n_head ({n_head})")
        days = range(n_dates) if day_of_year is None else list(day_of_year)
        if len(days) != n_dates:
            raise ConfigError(f"LTAE: {len(days)} days of year given for {n_dates} dates")
        self.n_bands = n_bands
        self.n_dates = n_dates
        self.input_projection = nn.Linear(n_bands, d_model)
        self.input_norm = nn.LayerNorm(d_model)
        encoding = sinusoid_encoding(torch.tensor(days), d_model // n_head, period)
        self.register_buffer("positional_encoding", encoding.repeat(1, n_head), persistent=False)
        self.attention = _MasterQueryAttention(d_model, n_head, d_k, dropout)
        mlp = tuple(mlp)
        self.mlp = nn.Sequential(*_hidden_layers(d_model, mlp, batch_norm=True))
        width = mlp[-1] if mlp else d_model
        self.dropout = nn.Dropout(dropout)
        self.output_norm = nn.LayerNorm(width)
        self.decoder = _dense_stack(width, tuple(decoder), n_classes, batch_norm=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the logits of ``x`` (batch, n_bands * n_dates), band-major."""
        series = x.reshape(x.shape[0], self.n_bands, self.n_dates).transpose(1, 2)
        h = self.input_norm(self.input_projection(series)) + self.positional_encoding
        h = self.mlp(self.attention(h))
        return self.decoder(self.output_norm(self.dropout(h)))


NETWORKS: dict[str, type[nn.Module]] = {
    "MLPClassifier": MLPClassifier,
    "TempCNN": TempCNN,
    "LTAE": LTAE,
}
"""The networks ``deep_learning_parameters.dl_name`` can name."""


def build_network(
    dl_name: str,
    n_features: int,
    n_classes: int,
    n_dates: int | None = None,
    day_of_year: Sequence[int] | None = None,
    dl_parameters: dict[str, Any] | None = None,
) -> nn.Module:
    """Build the network ``dl_name`` for rows of ``n_features`` features.

    Parameters
    ----------
    dl_name : str
        A key of :data:`NETWORKS`.
    n_features, n_classes : int
        Input and output widths.
    n_dates : int, optional
        Dates of the temporal grid; needed by TempCNN and LTAE (taken from
        ``day_of_year`` when omitted).
    day_of_year : sequence of int, optional
        Day of each date, for LTAE's positional encoding.
    dl_parameters : dict, optional
        Extra keyword arguments of the network's constructor.

    Returns
    -------
    torch.nn.Module
        The network, in training mode, on the CPU.

    Raises
    ------
    ConfigError
        On an unknown network, an unknown parameter, or features that do not
        split into whole time series.
    """
    if dl_name not in NETWORKS:
        raise ConfigError(f"unknown network {dl_name!r}; known: {sorted(NETWORKS)}")
    network = NETWORKS[dl_name]
    params = dict(dl_parameters or {})
    _check_parameters(network, params)
    if network is MLPClassifier:
        return MLPClassifier(n_features, n_classes, **params)
    if n_dates is None and day_of_year is not None:
        n_dates = len(day_of_year)
    if not n_dates or n_features % n_dates:
        raise ConfigError(
            f"{dl_name} needs the number of dates, dividing the {n_features} features; "
            f"got {n_dates}"
        )
    if network is LTAE:
        params.setdefault("day_of_year", day_of_year)
    return network(n_features // n_dates, n_dates, n_classes, **params)


def _check_parameters(network: type[nn.Module], params: dict[str, Any]) -> None:
    """Raise ConfigError if ``params`` holds a key the network's constructor does not take."""
    fixed = {"self", "n_features", "n_bands", "n_dates", "n_classes"}
    known = set(inspect.signature(network.__init__).parameters) - fixed
    unknown = set(params) - known
    if unknown:
        raise ConfigError(
            f"unknown dl_parameters {sorted(unknown)} for {network.__name__}; "
            f"known: {sorted(known)}"
        )
