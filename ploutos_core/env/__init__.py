"""The trading environment: one vectorized core over shared market arrays, two faces (SB3,
gymnasium).

- :class:`PortfolioCore`, the rules of execution, observation and episodes (:mod:`.core`)
- the Differential Sharpe Ratio reward (:mod:`.rewards`)
- :class:`PortfolioVecEnv`, a Stable-Baselines3 ``VecEnv`` (:mod:`.vec_env`)
- :class:`PortfolioEnv`, a gymnasium ``Env`` (:mod:`.gym_env`)

The market arrays themselves are :class:`ploutos_core.market.MarketData`.
"""

from ploutos_core.env.core import Policy, PortfolioCore, StepResult
from ploutos_core.env.gym_env import PortfolioEnv
from ploutos_core.env.vec_env import PortfolioVecEnv

__all__ = ["Policy", "PortfolioCore", "PortfolioEnv", "PortfolioVecEnv", "StepResult"]
