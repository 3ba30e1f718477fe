"""The drift band: paper metrics against the fold backtests' windows of the same length."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ploutos_core.signals.drift import (
    DRIFT_METRICS,
    drift_band,
    fold_windows,
    paper_window,
    window_metrics,
)
from ploutos_core.storage import write_parquet_atomic


def _write_fold_backtest(directory: Path, equity: np.ndarray, traded: float) -> None:
    dates = pd.bdate_range("2024-01-01", periods=len(equity))
    frame = pd.DataFrame({"strategy_equity": equity}, index=pd.DatetimeIndex(dates, name="date"))
    write_parquet_atomic(directory / "equity.parquet", frame)
    trades = pd.DataFrame(
        {
            "date": dates[1:],
            "ticker": "AAA",
            "side": "buy",
            "quantity": traded / 10.0,
            "price": 10.0,
            "cost": 0.0,
        }
    )
    write_parquet_atomic(directory / "trades.parquet", trades)


def test_window_metrics_follow_their_definitions() -> None:
    equity = np.array([100.0, 110.0, 99.0, 108.9])
    traded = np.array([999.0, 50.0, 0.0, 50.0])
    got = paper_window(equity, traded)
    returns = np.array([0.1, -0.1, 0.1])
    assert np.isclose(got["sharpe"], returns.mean() / returns.std(ddof=1) * np.sqrt(252))
    assert np.isclose(got["turnover"], 100.0 / 2.0 / equity.mean() * 252 / 3)
    assert np.isclose(got["hit_rate"], 2 / 3)
    assert np.isclose(got["max_drawdown"], 99.0 / 110.0 - 1.0)
    windows = window_metrics(equity, traded, 2)
    assert all(len(windows[m]) == 2 for m in DRIFT_METRICS)
    assert (
        np.isclose(windows["hit_rate"][1], 0.5)
        and len(window_metrics(equity, traded, 4)["sharpe"]) == 0
    )


def test_a_paper_period_unlike_every_fold_window_is_outside_the_band(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for fold in range(3):
        steady = 100.0 * np.cumprod(1.0 + 0.001 + 0.005 * rng.standard_normal(120))
        _write_fold_backtest(tmp_path / f"fold{fold}_seed0" / "backtest", steady, traded=20.0)
    (tmp_path / "fold9_seed0.json").write_text("{}")  # a fold result beside: not a backtest
    windows = fold_windows(tmp_path, 10)
    assert len(windows["sharpe"]) == 3 * (120 - 10)

    alike = 100.0 * np.cumprod(1.0 + 0.001 + 0.005 * rng.standard_normal(11))
    like = drift_band(paper_window(alike, np.full(11, 20.0)), windows, 10, (0.0, 1.0))
    crash = 100.0 * np.cumprod(np.r_[1.0, 0.97 + 0.002 * rng.standard_normal(10)])
    drifted = drift_band(paper_window(crash, np.full(11, 500.0)), windows, 10, (0.05, 0.95))

    assert like.n_windows == 330 and like.outside == []
    assert set(drifted.outside) == {"sharpe", "turnover", "hit_rate", "max_drawdown"}
    assert drifted.paper["hit_rate"] == 0.0 and drifted.low["hit_rate"] > 0.0
    assert "| max_drawdown |" in drifted.table() and "outside" in drifted.table()


def test_without_fold_backtests_nothing_is_compared(tmp_path: Path) -> None:
    windows = fold_windows(tmp_path / "absent", 5)
    band = drift_band({m: 0.0 for m in DRIFT_METRICS}, windows, 5, (0.05, 0.95))
    assert band.n_windows == 0 and band.outside == []
