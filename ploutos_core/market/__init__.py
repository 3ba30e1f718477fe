"""Market data as the environment reads it: dense read-only arrays over one calendar.

- :class:`MarketData`, the arrays and their conventions (:mod:`.arrays`)
- :func:`build_market`, :func:`load_market`: assembly from frames or stored Parquet
  (:mod:`.assembly`)
- :func:`split_periods`: the training period, embargo and test period of its dates (:mod:`.split`)
"""

from ploutos_core.market.arrays import MarketData
from ploutos_core.market.assembly import build_market, load_market
from ploutos_core.market.split import Split, split_periods

__all__ = ["MarketData", "Split", "build_market", "load_market", "split_periods"]
