"""``PortfolioVecEnv``: all sub-environments stepped at once by one NumPy core (an SB3 VecEnv)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn

from ploutos_core.config import EnvConfig
from ploutos_core.env.core import PortfolioCore
from ploutos_core.market import MarketData

_PER_ENV_STATE = (
    "t",
    "steps",
    "cash",
    "equity",
    "peak",
    "shares",
    "entry_price",
    "cost_basis",
    "last_fill_shares",
    "last_fill_price",
    "last_fill_cost",
    "fill_index",
)


def observation_space(core: PortfolioCore) -> spaces.Box:
    """Flat float32 observation space of ``core`` (layout in :mod:`ploutos_core.env.core`)."""
    return spaces.Box(-np.inf, np.inf, shape=(core.obs_size,), dtype=np.float32)


def action_space(core: PortfolioCore) -> spaces.MultiDiscrete:
    """One of hold (0), buy (1), sell (2) per ticker."""
    return spaces.MultiDiscrete([3] * core.market.N)


class PortfolioVecEnv(VecEnv):
    """``n_envs`` portfolios over one shared :class:`MarketData`, as a Stable-Baselines3 VecEnv.

    Finished sub-envs are reset automatically: their info then holds ``"terminal_observation"``,
    ``"TimeLimit.truncated"``, ``"episode"`` (``{"r", "l", "t"}``, as SB3's Monitor writes it),
    ``"episode_sharpe"``, ``"episode_turnover"`` and ``"episode_costs"``. Every info holds the
    sub-env's ``"equity"`` after the step (before any reset).

    All sub-envs draw their episode starts from one ``np.random.Generator`` seeded with ``seed``,
    in sub-env order, so a run is reproducible from its seed. The sub-envs are rows of one core,
    not objects: :meth:`get_attr` returns per-env state (``cash``, ``equity``, ``shares``, ``t``,
    the last fills ...) row by row and other attributes of this object once per index;
    :meth:`set_attr` sets shared attributes only.

    Parameters
    ----------
    market
        Market arrays of the period the environment may use (shared, never copied).
    config
        Environment settings.
    n_envs
        Number of sub-environments.
    seed
        Seed of the episode-start generator (None: fresh entropy).
    start_date
        Start every episode at the first valid bar on or after this date (backtest mode).
    run_to_end
        Run episodes to the end of the data instead of ``episode_length`` bars.
    """

    def __init__(
        self,
        market: MarketData,
        config: EnvConfig,
        n_envs: int,
        seed: int | None = None,
        *,
        start_date: str | np.datetime64 | None = None,
        run_to_end: bool = False,
    ) -> None:
        self.render_mode = None
        self.market = market
        self.config = config
        self.core = PortfolioCore(
            market, config, n_envs, start_date=start_date, run_to_end=run_to_end
        )
        self._rng = np.random.default_rng(seed)
        self._pending_seed: int | None = None
        self._actions: np.ndarray | None = None
        super().__init__(n_envs, observation_space(self.core), action_space(self.core))

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Reseed the episode-start generator at the next :meth:`reset` (SB3's convention)."""
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        self._pending_seed = seed
        return [seed] * self.num_envs

    def reset(self) -> VecEnvObs:
        if self._pending_seed is not None:
            self._rng = np.random.default_rng(self._pending_seed)
            self._pending_seed = None
        envs = np.arange(self.num_envs)
        self.core.reset(envs, self.core.draw_starts(self._rng, self.num_envs))
        self.reset_infos = [{"equity": equity} for equity in self.core.equity.tolist()]
        self._reset_seeds()
        self._reset_options()
        return self.core.observe()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_wait() called without step_async()")
        result = self.core.step(self._actions)
        self._actions = None
        obs = self.core.observe()
        done = result.terminated | result.truncated
        infos: list[dict[str, Any]] = [{"equity": equity} for equity in result.equity.tolist()]
        if done.any():
            finished = np.flatnonzero(done)
            for env in finished.tolist():
                info = infos[env]
                info.update(self.core.episode_info(env))
                info["terminal_observation"] = obs[env].copy()
                info["TimeLimit.truncated"] = bool(result.truncated[env])
            self.core.reset(finished, self.core.draw_starts(self._rng, len(finished)))
            obs[finished] = self.core.observe(finished)
        return obs, result.reward.astype(np.float32), done, infos

    def close(self) -> None:
        """Nothing to release: the market arrays belong to the caller."""

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        envs = list(self._get_indices(indices))
        if attr_name in _PER_ENV_STATE:
            state = getattr(self.core, attr_name)
            return [state[env] for env in envs]
        value = getattr(self, attr_name)
        return [value for _ in envs]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        envs = set(self._get_indices(indices))
        if attr_name in _PER_ENV_STATE or envs != set(range(self.num_envs)):
            raise AttributeError(
                f"cannot set {attr_name!r} for some sub-envs only: the sub-envs of a "
                "PortfolioVecEnv share one core; set shared attributes for all of them"
            )
        setattr(self, attr_name, value)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        """Call this object's ``method_name`` once per index (the sub-envs share this object)."""
        method = getattr(self, method_name)
        return [method(*method_args, **method_kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        """No sub-env is a wrapped gymnasium env."""
        return [False for _ in self._get_indices(indices)]
