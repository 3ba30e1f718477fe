"""The per-ticker encoder: one small network shared by every ticker, in front of the policy's MLP.

The flat policy feeds the whole observation to its first layers: at 500 tickers that is a
44,004 x 256 weight matrix per network, which costs most of a rollout step and of an update on a
CPU, and learns each ticker's features with separate weights. With ``ticker_encoder`` set in the
config, each ticker's 85 features, its two position values (weight, unrealized return) and its
tradable flag go through the same layers (``[16]``: 88 -> 16), and the policy's ``net_arch`` MLPs
read the concatenated codes plus the portfolio values. Same features, same normalization, same
PPO; an SB3 ``BaseFeaturesExtractor``, so models save, load and resume like any ``MlpPolicy``
model.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from ploutos_core.env.layout import PORTFOLIO_VALUES, ObservationLayout, ticker_inputs

__all__ = ["TickerEncoder"]


class TickerEncoder(BaseFeaturesExtractor):
    """Encode each ticker with shared layers; output the codes of all tickers and the portfolio.

    Parameters
    ----------
    observation_space:
        The environment's, of length ``observation_size(n_tickers, n_features)``.
    n_tickers, n_features:
        The universe the observation describes.
    widths:
        Widths of the shared layers (tanh after each, as SB3's MLPs); the last is the code size.
    """

    def __init__(
        self,
        observation_space: spaces.Box,
        n_tickers: int,
        n_features: int,
        widths: Sequence[int],
    ) -> None:
        self.layout = ObservationLayout(n_tickers, n_features)
        size = self.layout.size
        if observation_space.shape != (size,):
            raise ValueError(
                f"observation of shape {observation_space.shape} is not {n_tickers} tickers x "
                f"{n_features} features (expected ({size},))"
            )
        if not widths:
            raise ValueError("a ticker encoder needs at least one layer width")
        super().__init__(observation_space, n_tickers * widths[-1] + PORTFOLIO_VALUES)
        self.n_tickers = n_tickers
        self.n_features = n_features
        layers: list[nn.Module] = []
        inputs = ticker_inputs(n_features)
        for width in widths:
            layers += [nn.Linear(inputs, width), nn.Tanh()]
            inputs = width
        self.shared = nn.Sequential(*layers)

    def per_ticker(self, observations: torch.Tensor) -> torch.Tensor:
        """``[batch, n_tickers, ticker_inputs]``: each ticker's features, position values and
        tradable flag."""
        features, positions, tradable, _ = self.layout.split(observations)
        return torch.cat([features, positions, tradable.unsqueeze(2)], dim=2)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        codes = self.shared(self.per_ticker(observations)).flatten(1)
        portfolio = observations[:, self.layout.portfolio]
        return torch.cat([codes, portfolio], dim=1)
