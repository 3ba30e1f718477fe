"""Metrics against values worked out independently, with plain Python arithmetic."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ploutos_core.backtest.metrics import json_safe, metrics, trade_stats


def _reference(equity: list[float]) -> dict[str, float]:
    """The documented conventions, written out independently of the implementation."""
    returns = [b / a - 1 for a, b in zip(equity, equity[1:], strict=False)]
    n = len(returns)
    mean = sum(returns) / n
    std = statistics.stdev(returns)
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / n)
    peak, worst = equity[0], 0.0
    for value in equity:
        peak = max(peak, value)
        worst = min(worst, value / peak - 1)
    cagr = (equity[-1] / equity[0]) ** (252 / n) - 1
    return {
        "total_return": equity[-1] / equity[0] - 1,
        "cagr": cagr,
        "volatility": std * math.sqrt(252),
        "sharpe": mean / std * math.sqrt(252),
        "sortino": mean / downside * math.sqrt(252),
        "max_drawdown": worst,
        "calmar": cagr / abs(worst),
    }


def test_metrics_of_a_worked_example():
    equity = [100.0, 110.0, 99.0, 108.9, 119.79]
    # Returns +10%, -10%, +10%, +10%; the only drawdown is 110 -> 99, i.e. -10%.
    result = metrics(np.array(equity))
    assert result["total_return"] == pytest.approx(0.1979)
    assert result["max_drawdown"] == pytest.approx(-0.10)
    mean, std = 0.05, statistics.stdev([0.1, -0.1, 0.1, 0.1])
    assert std == pytest.approx(0.1)
    assert result["sharpe"] == pytest.approx(mean / 0.1 * math.sqrt(252))
    # downside deviation over ALL bars: sqrt(0.01 / 4) = 0.05
    assert result["sortino"] == pytest.approx(0.05 / 0.05 * math.sqrt(252))
    assert result["cagr"] == pytest.approx(1.1979 ** (252 / 4) - 1)
    assert result["calmar"] == pytest.approx(result["cagr"] / 0.10)
    assert result == pytest.approx(_reference(equity))


def test_a_loss_on_the_first_bar_is_a_drawdown():
    result = metrics(pd.Series([100.0, 95.0, 96.0, 97.0, 98.0]))
    assert result["max_drawdown"] == pytest.approx(-0.05)
    assert result["calmar"] == pytest.approx(result["cagr"] / 0.05)


def test_flat_equity_has_zero_ratios():
    result = metrics(np.full(10, 1_000.0))
    assert result == {
        "total_return": 0.0,
        "cagr": 0.0,
        "volatility": 0.0,
        "sharpe": 0.0,
        "sortino": 0.0,
        "max_drawdown": 0.0,
        "calmar": 0.0,
    }


def test_rising_equity_without_losses_has_infinite_sortino_and_calmar():
    result = metrics([100.0, 101.0, 103.0, 104.0])
    assert result["max_drawdown"] == 0.0
    assert math.isinf(result["sortino"]) and math.isinf(result["calmar"])
    assert json_safe(result)["calmar"] is None


@pytest.mark.parametrize("bad", [[100.0], [100.0, 0.0, 50.0], [100.0, float("nan")]])
def test_invalid_equity_is_rejected(bad):
    with pytest.raises(ValueError, match="equity"):
        metrics(bad)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-0.2, 0.2, allow_nan=False), min_size=2, max_size=40).filter(
        lambda r: statistics.pstdev(r) > 1e-6 and any(x < -1e-4 for x in r)
    ),
    st.floats(1.0, 1e7),
)
def test_metrics_match_the_reference_and_are_scale_invariant(returns, capital):
    equity = [capital]
    for r in returns:
        equity.append(equity[-1] * (1 + r))
    result = metrics(equity)
    assert result == pytest.approx(_reference(equity), rel=1e-9, abs=1e-12)
    assert metrics([v * 3.0 for v in equity]) == pytest.approx(result, rel=1e-9, abs=1e-12)


def test_trade_stats_of_a_worked_example():
    fills = pd.DataFrame(
        {
            "date": pd.to_datetime(
                ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-05"]
            ),
            "ticker": ["AAA", "AAA", "BBB", "AAA", "BBB"],
            "side": ["buy", "buy", "buy", "sell", "sell"],
            "quantity": [10.0, 10.0, 5.0, 20.0, 5.0],
            "price": [10.0, 12.0, 20.0, 13.0, 18.0],
            "cost": [1.0, 1.0, 0.5, 2.0, 0.5],
        }
    )
    # AAA: basis 100 + 1 + 120 + 1 = 222; sale 260 - 2 = 258; P&L +36.
    # BBB: basis 100 + 0.5 = 100.5; sale 90 - 0.5 = 89.5; P&L -11.
    equity = np.array([1000.0, 1000.0, 1010.0, 1020.0, 1030.0])
    exposure = np.array([0.0, 101.0, 230.0, 350.0, 0.0])
    stats = trade_stats(fills, equity, exposure)
    notional = 100 + 120 + 100 + 260 + 90
    assert stats == pytest.approx(
        {
            "n_trades": 5.0,
            "n_closed_trades": 2.0,
            "win_rate": 0.5,
            "profit_factor": 36.0 / 11.0,
            "average_exposure": float(np.mean(exposure / equity)),
            "annual_turnover": notional / 2 / equity.mean() * 252 / 4,
            "total_costs": 5.0,
        }
    )


def test_partial_sells_release_average_cost():
    fills = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04"]),
            "ticker": ["AAA"] * 3,
            "side": ["buy", "sell", "sell"],
            "quantity": [10.0, 4.0, 6.0],
            "price": [10.0, 9.0, 12.0],
            "cost": [0.0, 0.0, 0.0],
        }
    )
    stats = trade_stats(fills, np.full(3, 1000.0), np.zeros(3))
    # -4 on the first sale, +12 on the second
    assert stats["win_rate"] == 0.5
    assert stats["profit_factor"] == pytest.approx(3.0)


def test_no_trades():
    empty = pd.DataFrame(columns=["date", "ticker", "side", "quantity", "price", "cost"])
    stats = trade_stats(empty, np.full(4, 10.0), np.zeros(4))
    assert stats["n_trades"] == 0 and stats["win_rate"] == 0 and stats["profit_factor"] == 0
    assert stats["annual_turnover"] == 0 and stats["average_exposure"] == 0
