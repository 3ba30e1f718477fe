"""``PortfolioEnv``: one portfolio as a gymnasium ``Env``, over the same core as the VecEnv."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding

from ploutos_core.config import EnvConfig
from ploutos_core.env.core import PortfolioCore
from ploutos_core.env.vec_env import action_space, observation_space
from ploutos_core.market import MarketData

_ONLY_ENV = np.zeros(1, dtype=np.int64)


class PortfolioEnv(gym.Env[np.ndarray, np.ndarray]):
    """A single portfolio environment for users who bring their own algorithm.

    Same observation, action, rules and reward as :class:`~ploutos_core.env.PortfolioVecEnv`
    (a ``PortfolioVecEnv`` with ``n_envs=1`` and the same seed gives identical trajectories).
    Episode starts are drawn from ``self.np_random``. Infos hold ``"equity"``; the last step's
    info also holds ``"episode"``, ``"episode_sharpe"``, ``"episode_turnover"`` and
    ``"episode_costs"``.

    Parameters
    ----------
    market
        Market arrays of the period the environment may use.
    config
        Environment settings.
    seed
        Seeds ``np_random`` now, so that ``reset()`` without a seed is reproducible.
    start_date
        Start every episode at the first valid bar on or after this date (backtest mode).
    run_to_end
        Run episodes to the end of the data instead of ``episode_length`` bars.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        market: MarketData,
        config: EnvConfig,
        seed: int | None = None,
        *,
        start_date: str | np.datetime64 | None = None,
        run_to_end: bool = False,
    ) -> None:
        self.market = market
        self.config = config
        self.core = PortfolioCore(market, config, 1, start_date=start_date, run_to_end=run_to_end)
        self.observation_space = observation_space(self.core)
        self.action_space = action_space(self.core)
        if seed is not None:
            self._np_random, self._np_random_seed = seeding.np_random(seed)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.core.reset(_ONLY_ENV, self.core.draw_starts(self.np_random, 1))
        return self.core.observe()[0], {"equity": float(self.core.equity[0])}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        result = self.core.step(np.asarray(action).reshape(1, -1))
        terminated = bool(result.terminated[0])
        truncated = bool(result.truncated[0])
        info: dict[str, Any] = {"equity": float(result.equity[0])}
        if terminated or truncated:
            info.update(self.core.episode_info(0))
        return self.core.observe()[0], float(result.reward[0]), terminated, truncated, info
