"""Using a promoted model: the next session's orders, the paper ledger, and the drift check.

- :mod:`.sessions`: which sessions can be booked (late bars wait, never guessed) and the session
  an order fills in
- :mod:`.ledger`: :func:`run_paper`, the promoted model's paper portfolio by the backtest's own
  simulation, one JSON record per booked session
- :mod:`.orders`: :func:`decide_orders`, the next session's orders on the last bar, as the
  backtest decides every bar
- :mod:`.drift`: the paper period against the same-length windows of the fold backtests

Settings: :class:`ploutos_core.config.PaperConfig` (``config/paper.yaml``).
"""

from ploutos_core.signals.drift import DRIFT_METRICS, DriftBand, drift_band, fold_windows
from ploutos_core.signals.ledger import PaperLedger, run_paper, write_session
from ploutos_core.signals.orders import decide_orders, signals_markdown, write_signals
from ploutos_core.signals.sessions import Settlement, next_session, settlement

__all__ = [
    "DRIFT_METRICS",
    "DriftBand",
    "PaperLedger",
    "Settlement",
    "decide_orders",
    "drift_band",
    "fold_windows",
    "next_session",
    "run_paper",
    "settlement",
    "signals_markdown",
    "write_session",
    "write_signals",
]
