"""The trading environment: one vectorized core over shared market arrays, two faces (SB3,
gymnasium).

- :class:`PortfolioCore`, the rules of execution, observation and episodes (:mod:`.core`)
- the Differential Sharpe Ratio reward (:mod:`.rewards`)
- :class:`PortfolioVecEnv`, a Stable-Baselines3 ``VecEnv`` (:mod:`.vec_env`)
- :class:`PortfolioEnv`, a gymnasium ``Env`` (:mod:`.gym_env`)

The market arrays themselves are :class:`ploutos_core.market.MarketData`.
"""

from importlib import import_module
from typing import TYPE_CHECKING

from ploutos_core.env.core import Policy, PortfolioCore, StepResult

if TYPE_CHECKING:
    from ploutos_core.env.gym_env import PortfolioEnv
    from ploutos_core.env.vec_env import PortfolioVecEnv

# The two faces import gymnasium and Stable-Baselines3 (and so torch): loaded on first use, so
# that what needs only the core (the backtest's simulation, the Dagster code location) starts fast.
_LAZY = {"PortfolioEnv": "ploutos_core.env.gym_env", "PortfolioVecEnv": "ploutos_core.env.vec_env"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Policy", "PortfolioCore", "PortfolioEnv", "PortfolioVecEnv", "StepResult"]
