"""The shared-ticker policy: one network per ticker, whatever the number of tickers.

The encoder policy (:mod:`ploutos_core.training.encoders`) encodes every ticker with shared
layers but then reads the concatenated codes with MLPs whose input, and whose action layer, grow
with the universe: a model is tied to its tickers and their order. :class:`SharedTickerPolicy`
is tied to neither:

1. the same small network (``ticker_widths``, tanh) reads each ticker's features, position
   values and tradable flag and gives a code per ticker;
2. a context: the mean of the codes over the *tradable* tickers only, a second pooled summary
   of them (``pooling``: their max, or an attention-weighted sum, Ilse et al. 2018), then the
   portfolio values;
3. actor: one head (``head_widths``, tanh, then 3 logits), shared by every ticker, reads
   ``[the ticker's code, the context]``; an untradable ticker's buy and sell logits are set to
   :data:`MASKED_LOGIT`, so it holds with probability 1;
4. critic: an MLP (``critic_widths``) on the context.

Its parameter count does not depend on the number of tickers, and it is permutation-equivariant:
swapping two tickers in the observation swaps their actions and leaves the value unchanged. The
number of tickers is read from each observation's length (:meth:`ObservationLayout.of`), so a
model trained on N tickers acts on M (:meth:`action_logits` on observations of another length;
SB3's ``predict`` checks the saved observation space and stays N-only).

A subclass of SB3's ``ActorCriticPolicy``: PPO trains it, ``PPO.load`` rebuilds it from its
saved constructor arguments, ``--resume`` continues it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from ploutos_core.env.layout import PORTFOLIO_VALUES, ObservationLayout, ticker_inputs
from ploutos_core.training.distributions import BatchedMultiCategoricalDistribution

__all__ = ["MASKED_LOGIT", "POOLINGS", "SHARED_HEAD", "SharedTickerPolicy"]

MASKED_LOGIT = -1e8
"""Logit of buy and sell for an untradable ticker: ``exp`` of it is exactly 0 in float32, and
``0 * MASKED_LOGIT`` is 0, so log-probabilities and the entropy stay finite."""
SHARED_HEAD = (64,)
"""Hidden widths of the per-ticker actor head (the config does not set them)."""
POOLINGS = ("max", "attention")
"""The pooled summary beside the mean: the codes' max, or their attention-weighted sum."""
CHOICES = 3
"""hold, buy, sell."""
HOLD = 0


def _mlp(inputs: int, widths: Sequence[int], activation: type[nn.Module]) -> tuple[nn.Module, int]:
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Linear(inputs, width), activation()]
        inputs = width
    return nn.Sequential(*layers), inputs


class AttentionPooling(nn.Module):
    """Attention-based pooling of a set of codes (Ilse, Tomczak and Welling, "Attention-based
    Deep Multiple Instance Learning", ICML 2018, eq. 9): ``sum_k a_k h_k`` with
    ``a = softmax_k(w^T tanh(V h_k))`` over the tradable tickers ``k`` only.

    The weights are invariant to the tickers' order and their count; an untradable ticker gets
    weight 0, and an observation without a tradable ticker pools to zeros.
    """

    def __init__(self, code_size: int, width: int) -> None:
        super().__init__()
        self.hidden = nn.Linear(code_size, width)
        self.score = nn.Linear(width, 1)

    def weights(self, codes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``[B, N]`` attention weights; each row sums to 1 over its tradable tickers."""
        scores = self.score(torch.tanh(self.hidden(codes))).squeeze(2)
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=1)
        return weights * mask.to(weights.dtype)

    def forward(self, codes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.bmm(self.weights(codes, mask).unsqueeze(1), codes).squeeze(1)


class SharedTickerPolicy(ActorCriticPolicy):
    """Per-ticker encoder, masked pooled context, one actor head for every ticker.

    Parameters
    ----------
    observation_space, action_space, lr_schedule:
        As for any SB3 policy; the action space is ``MultiDiscrete([3] * N)``.
    n_features:
        Features per ticker (the observation's length gives the number of tickers).
    ticker_widths:
        Widths of the per-ticker layers; the last is the code size.
    head_widths:
        Hidden widths of the shared actor head.
    critic_widths:
        Hidden widths of the critic MLP on the context.
    pooling:
        The context's summary beside the mean (:data:`POOLINGS`): ``max``, or ``attention``
        (:class:`AttentionPooling` with a hidden layer as wide as the code). The config's
        default is ``attention``; this default stays ``max``, what a model saved before the
        argument existed was built with, so that ``PPO.load`` rebuilds it as it was.
    activation_fn, ortho_init, optimizer_class, optimizer_kwargs:
        As SB3's ``ActorCriticPolicy`` (tanh, orthogonal initialization, Adam).
    """

    def __init__(
        self,
        observation_space: spaces.Box,
        action_space: spaces.MultiDiscrete,
        lr_schedule: Schedule,
        n_features: int,
        ticker_widths: Sequence[int] = (16,),
        head_widths: Sequence[int] = SHARED_HEAD,
        critic_widths: Sequence[int] = (64, 64),
        pooling: str = "max",
        activation_fn: type[nn.Module] = nn.Tanh,
        ortho_init: bool = True,
        **kwargs: Any,
    ) -> None:
        if not ticker_widths:
            raise ValueError("a shared-ticker policy needs at least one per-ticker layer width")
        if not head_widths:
            raise ValueError("a shared-ticker policy needs at least one actor head layer width")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        nvec = np.asarray(getattr(action_space, "nvec", []))
        if nvec.size == 0 or not np.all(nvec == CHOICES):
            raise ValueError(f"action space {action_space} is not hold/buy/sell per ticker")
        self.n_features = int(n_features)
        self.ticker_widths = [int(w) for w in ticker_widths]
        self.head_widths = [int(w) for w in head_widths]
        self.critic_widths = [int(w) for w in critic_widths]
        self.pooling = pooling
        layout = ObservationLayout.of(int(observation_space.shape[0]), self.n_features)
        if layout.n_tickers != nvec.size:
            raise ValueError(
                f"observation of {observation_space.shape[0]} values holds {layout.n_tickers} "
                f"tickers of {n_features} features but the action space has {nvec.size}"
            )
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            activation_fn=activation_fn,
            ortho_init=ortho_init,
            **kwargs,
        )

    def _build(self, lr_schedule: Schedule) -> None:
        activation = self.activation_fn
        self.encoder, code = _mlp(ticker_inputs(self.n_features), self.ticker_widths, activation)
        self.code_size = code
        self.context_size = 2 * code + PORTFOLIO_VALUES
        self.attention = AttentionPooling(code, code) if self.pooling == "attention" else None
        head, head_out = _mlp(code + self.context_size, self.head_widths, activation)
        self.actor_head = head
        self.action_net = nn.Linear(head_out, CHOICES)
        critic, critic_out = _mlp(self.context_size, self.critic_widths, activation)
        self.critic = critic
        self.value_net = nn.Linear(critic_out, 1)
        self.action_dist = BatchedMultiCategoricalDistribution(
            [CHOICES] * len(self.action_space.nvec)
        )
        if self.ortho_init:
            gains = {
                self.encoder: np.sqrt(2),
                self.actor_head: np.sqrt(2),
                self.critic: np.sqrt(2),
                self.action_net: 0.01,
                self.value_net: 1.0,
            }
            if self.attention is not None:
                gains[self.attention] = 1.0
            for module, gain in gains.items():
                module.apply(lambda m, g=gain: self.init_weights(m, gain=g))
        self.optimizer = self.optimizer_class(
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            n_features=self.n_features,
            ticker_widths=self.ticker_widths,
            head_widths=self.head_widths,
            critic_widths=self.critic_widths,
            pooling=self.pooling,
        )
        for unused in ("net_arch", "features_extractor_class", "features_extractor_kwargs"):
            data.pop(unused, None)
        return data

    # The network -------------------------------------------------------------------------

    def _encode(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-ticker codes ``[B, N, code]``, the tradable mask ``[B, N]`` and the context
        ``[B, 2 * code + portfolio]``; N from the observation's length."""
        obs = obs.float()
        layout = ObservationLayout.of(obs.shape[1], self.n_features)
        features, positions, tradable, portfolio = layout.split(obs)
        inputs = torch.cat([features, positions, tradable.unsqueeze(2)], dim=2)
        codes = self.encoder(inputs)
        mask = tradable > 0.5
        weights = mask.to(codes.dtype)
        count = weights.sum(dim=1, keepdim=True).clamp(min=1.0)
        mean = torch.bmm(weights.unsqueeze(1), codes).squeeze(1) / count
        return codes, mask, torch.cat([mean, self._pool(codes, mask), portfolio], dim=1)

    def _pool(self, codes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``[B, code]``: the tradable codes' max or attention-weighted sum (zeros if none)."""
        if self.attention is not None:
            return self.attention(codes, mask)
        lowest = torch.finfo(codes.dtype).min
        peak = codes.masked_fill(~mask.unsqueeze(2), lowest).max(dim=1).values
        return torch.where(mask.any(dim=1, keepdim=True), peak, torch.zeros_like(peak))

    def _logits(
        self, codes: torch.Tensor, mask: torch.Tensor, context: torch.Tensor
    ) -> torch.Tensor:
        """``[B, N, 3]``: each ticker's head on ``[its code, the context]``; untradable: hold.

        The head's first layer on ``[code, context]`` is computed as ``W_code @ code`` per
        ticker plus ``W_context @ context + bias`` once per observation, broadcast over the
        tickers: the same function as the layer on the concatenation, without building the
        ``[B, N, code + context]`` input (the largest tensor of an update) or multiplying the
        context again for every ticker.
        """
        first, rest = self.actor_head[0], self.actor_head[1:]
        per_ticker = nn.functional.linear(codes, first.weight[:, : self.code_size])
        per_observation = nn.functional.linear(
            context, first.weight[:, self.code_size :], first.bias
        )
        logits = self.action_net(rest(per_ticker.add_(per_observation.unsqueeze(1))))
        blocked = ~mask.unsqueeze(2) & (torch.arange(CHOICES, device=logits.device) != HOLD)
        return logits.masked_fill(blocked, MASKED_LOGIT)

    def _value(self, context: torch.Tensor) -> torch.Tensor:
        return self.value_net(self.critic(context))

    def action_logits(self, obs: torch.Tensor) -> torch.Tensor:
        """``[B, N, 3]`` logits of hold/buy/sell for (normalized) observations of any N."""
        return self._logits(*self._encode(obs))

    def _distribution(self, obs: torch.Tensor) -> tuple[BatchedMultiCategoricalDistribution, Any]:
        codes, mask, context = self._encode(obs)
        logits = self._logits(codes, mask, context)
        return self.action_dist.proba_distribution(logits.flatten(1)), context

    # SB3's entry points ------------------------------------------------------------------

    def forward(
        self, obs: torch.Tensor, deterministic: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        distribution, context = self._distribution(obs)
        actions = distribution.get_actions(deterministic=deterministic)
        log_prob = distribution.log_prob(actions)
        return actions, self._value(context), log_prob

    def evaluate_actions(
        self, obs: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        distribution, context = self._distribution(obs)
        return self._value(context), distribution.log_prob(actions), distribution.entropy()

    def get_distribution(self, obs: torch.Tensor) -> BatchedMultiCategoricalDistribution:
        return self._distribution(obs)[0]

    def predict_values(self, obs: torch.Tensor) -> torch.Tensor:
        return self._value(self._encode(obs)[2])

    def _predict(self, observation: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        return self.get_distribution(observation).get_actions(deterministic=deterministic)
