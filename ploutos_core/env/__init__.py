"""The trading environment: shared market arrays, one vectorized core, two faces (SB3, gymnasium).

- :class:`MarketData`, :func:`build_market`, :func:`load_market` (:mod:`.market`)
- :class:`PortfolioCore`, the rules of execution, observation and episodes (:mod:`.core`)
- :class:`PortfolioVecEnv`, a Stable-Baselines3 ``VecEnv`` (:mod:`.vec_env`)
- :class:`PortfolioEnv`, a gymnasium ``Env`` (:mod:`.gym_env`)
"""

from ploutos_core.env.core import PortfolioCore, StepResult
from ploutos_core.env.gym_env import PortfolioEnv
from ploutos_core.env.market import MarketData, build_market, load_market
from ploutos_core.env.vec_env import PortfolioVecEnv

__all__ = [
    "MarketData",
    "PortfolioCore",
    "PortfolioEnv",
    "PortfolioVecEnv",
    "StepResult",
    "build_market",
    "load_market",
]
