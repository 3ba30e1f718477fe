"""Drift: does the paper period look like the model's out-of-sample backtests?

The paper period's Sharpe ratio, turnover, hit rate and maximum drawdown are compared with their
distribution over every window of the same number of sessions in the model's fold backtests (the
walk-forward test windows of :mod:`ploutos_core.evaluation`, ``folds/fold<F>_seed<S>/backtest/``).
A metric outside the ``drift_quantiles`` band of that distribution is drift: the market or the
model's behaviour is unlike what it was judged on.

Window metrics (``L`` sessions, equity ``e_0..e_L`` with ``e_0`` the close before the first
session, traded notional ``v_1..v_L`` filled in each session):

- ``sharpe``: annualized, ``mean(r) / std(r, ddof=1) * sqrt(252)`` of ``r_i = e_i / e_{i-1} - 1``
  (0 for a flat window), as in the backtest;
- ``turnover``: ``sum(v) / 2 / mean(e) * 252 / L``, the backtest's annual turnover;
- ``hit_rate``: the share of sessions with ``r_i > 0`` (per session, not per trade: a short window
  rarely closes a trade);
- ``max_drawdown``: ``min(e_t / max_{s<=t} e_s - 1)``, ``e_0`` included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from ploutos_core.errors import StorageError
from ploutos_core.market.dates import BARS_PER_YEAR
from ploutos_core.storage import read_parquet

DRIFT_METRICS = ("sharpe", "turnover", "hit_rate", "max_drawdown")
_FOLD_DIR = re.compile(r"fold\d+_seed\d+")


def window_metrics(equity: np.ndarray, traded: np.ndarray, length: int) -> dict[str, np.ndarray]:
    """:data:`DRIFT_METRICS` of every window of ``length`` sessions of one run.

    Parameters
    ----------
    equity, traded:
        ``[T]`` per bar: equity at the close and the notional filled at that bar's open
        (``traded[0]`` is not read: the first bar's fills belong to the bar before).
    length:
        Sessions per window; windows start at every bar with ``length`` bars after it.

    Returns
    -------
    dict
        Per metric, ``float64 [T - length]`` (empty when the run is too short).
    """
    equity = np.asarray(equity, dtype=np.float64)
    traded = np.asarray(traded, dtype=np.float64)
    if equity.size <= length:
        return {name: np.empty(0) for name in DRIFT_METRICS}
    levels = sliding_window_view(equity, length + 1)
    returns = levels[:, 1:] / levels[:, :-1] - 1.0
    flows = sliding_window_view(traded[1:], length)
    mean = returns.mean(axis=1)
    std = returns.std(axis=1, ddof=1) if length > 1 else np.zeros(len(returns))
    flat = std <= 1e-12 * np.maximum(np.sqrt((returns**2).mean(axis=1)), 1e-300)
    sharpe = np.divide(mean, std, out=np.zeros_like(mean), where=~flat) * np.sqrt(BARS_PER_YEAR)
    drawdown = (levels / np.maximum.accumulate(levels, axis=1) - 1.0).min(axis=1)
    return {
        "sharpe": sharpe,
        "turnover": flows.sum(axis=1) / 2.0 / levels.mean(axis=1) * BARS_PER_YEAR / length,
        "hit_rate": (returns > 0.0).mean(axis=1),
        "max_drawdown": drawdown,
    }


def paper_window(equity: np.ndarray, traded: np.ndarray) -> dict[str, float]:
    """:data:`DRIFT_METRICS` of the whole paper period (``len(equity) - 1`` sessions)."""
    values = window_metrics(equity, traded, len(equity) - 1)
    return {name: float(v[0]) for name, v in values.items()}


@dataclass(frozen=True)
class DriftBand:
    """The paper period against the fold backtests' windows of the same length.

    Attributes
    ----------
    sessions : int
        Paper sessions compared.
    n_windows : int
        Fold backtest windows in the distribution.
    paper, low, high : dict[str, float]
        Per metric, the paper value and the band's bounds (NaN without windows).
    outside : list[str]
        The metrics outside the band: drift.
    """

    sessions: int
    n_windows: int
    paper: dict[str, float]
    low: dict[str, float]
    high: dict[str, float]
    outside: list[str]

    def table(self) -> str:
        """The numbers as a markdown table."""
        lines = [
            "| metric | paper | band low | band high | |",
            "| --- | ---: | ---: | ---: | --- |",
        ]
        for name in DRIFT_METRICS:
            flag = "outside" if name in self.outside else ""
            lines.append(
                f"| {name} | {self.paper[name]:.4f} | {self.low[name]:.4f} | "
                f"{self.high[name]:.4f} | {flag} |"
            )
        return "\n".join(lines)


def drift_band(
    paper: dict[str, float],
    windows: dict[str, np.ndarray],
    sessions: int,
    quantiles: tuple[float, float],
) -> DriftBand:
    """Compare ``paper`` (:func:`paper_window`) with the ``quantiles`` of ``windows`` (each
    metric's values over the fold backtests' windows, :func:`fold_windows`)."""
    n = len(windows[DRIFT_METRICS[0]])
    low = {m: float(np.quantile(windows[m], quantiles[0])) if n else np.nan for m in DRIFT_METRICS}
    high = {m: float(np.quantile(windows[m], quantiles[1])) if n else np.nan for m in DRIFT_METRICS}
    outside = [m for m in DRIFT_METRICS if n and not low[m] <= paper[m] <= high[m]]
    return DriftBand(sessions, n, dict(paper), low, high, outside)


def fold_backtest_files() -> list[str]:
    """What :func:`fold_windows` reads, as patterns relative to the ``folds/`` directory (the
    files to fetch from an object store)."""
    from ploutos_core.backtest.run import EQUITY_FILE, TRADES_FILE  # loads torch: not at import

    return [f"*/backtest/{EQUITY_FILE}", f"*/backtest/{TRADES_FILE}"]


def fold_backtest_dirs(folds_dir: str | Path) -> list[Path]:
    """The fold backtests under an evaluation's ``folds/`` directory, in name order."""
    from ploutos_core.backtest.run import EQUITY_FILE  # loads torch: not at import

    folds_dir = Path(folds_dir)
    if not folds_dir.is_dir():
        return []
    found = [p / "backtest" for p in folds_dir.iterdir() if _FOLD_DIR.fullmatch(p.name)]
    return sorted(p for p in found if (p / EQUITY_FILE).is_file())


def fold_windows(folds_dir: str | Path, length: int) -> dict[str, np.ndarray]:
    """:func:`window_metrics` of every fold backtest under ``folds_dir``, concatenated.

    Raises
    ------
    StorageError
        When a fold backtest's files cannot be read.
    """
    from ploutos_core.backtest.run import EQUITY_FILE, TRADES_FILE  # loads torch: not at import

    parts = []
    for directory in fold_backtest_dirs(folds_dir):
        try:
            equity = read_parquet(directory / EQUITY_FILE)["strategy_equity"]
            trades = read_parquet(directory / TRADES_FILE)
        except (OSError, KeyError, ValueError) as exc:
            raise StorageError(
                f"cannot read the fold backtest in {directory}: {exc}; materialize its "
                "fold_backtest again"
            ) from exc
        notional = (trades["quantity"] * trades["price"]).groupby(trades["date"]).sum()
        traded = notional.reindex(pd.DatetimeIndex(equity.index), fill_value=0.0)
        parts.append(window_metrics(equity.to_numpy(), traded.to_numpy(), length))
    return {
        name: np.concatenate([p[name] for p in parts]) if parts else np.empty(0)
        for name in DRIFT_METRICS
    }
