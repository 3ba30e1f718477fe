"""Backtest: accounting, benchmark, sanity of the whole chain, and a trained model's test period."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from ploutos_core.backtest import (
    BacktestRun,
    accounting_error,
    buy_and_hold_benchmark,
    cash_benchmark,
    format_metrics_table,
    run_backtest,
    simulate,
)
from ploutos_core.backtest.plots import PNG_SIGNATURE
from ploutos_core.config import BacktestConfig, EnvConfig
from ploutos_core.errors import ManifestError
from ploutos_core.market import MarketData, build_market
from tests.core.conftest import TinyModel
from tests.support.markets import random_feature_market

FEATURES = tuple(f"f{i}" for i in range(6))
HOLD, BUY, SELL = 0, 1, 2
ENV = EnvConfig()


def synthetic_market(n_tickers: int, n_days: int, seed: int, **market_options: bool):
    return random_feature_market(n_tickers, n_days, FEATURES, seed=seed, **market_options)


@pytest.fixture(scope="module")
def market() -> MarketData:
    """8 tickers, late listing, delisting and missing days; from the first bar with features."""
    full = synthetic_market(8, 320, seed=11)
    first = np.flatnonzero(full.tradable.any(axis=1))[0]
    return full.period(full.dates[first])


@pytest.fixture(scope="module")
def clean_market() -> MarketData:
    """Every ticker tradable on every bar (no listing, delisting or gaps)."""
    full = synthetic_market(6, 260, seed=5, late_listing=False, delisting=False,
                            missing_days=False)
    return full.period(full.dates[5])


def constant(action: int, n: int):
    return lambda obs: np.full((1, n), action)


class FirstBarOnly:
    """Buy everything on the first bar, hold afterwards."""

    def __init__(self, n: int) -> None:
        self.n, self.calls = n, 0

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        self.calls += 1
        return np.full((1, self.n), BUY if self.calls == 1 else HOLD)


class Cheater:
    """Sees the next bar's returns: buy when open[t+2] > open[t+1], sell otherwise."""

    def __init__(self, market: MarketData) -> None:
        self.market, self.t = market, 0

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        t, m = self.t, self.market
        self.t += 1
        if t + 2 >= m.T:
            return np.full((1, m.N), HOLD)
        up = (m.open[t + 2] > m.open[t + 1]) & m.tradable[t + 1] & m.tradable[t + 2]
        return np.where(up, BUY, SELL)[None, :]


class Random:
    def __init__(self, n: int, seed: int) -> None:
        self.n, self.rng = n, np.random.default_rng(seed)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self.rng.integers(0, 3, size=(1, self.n))


def fills_as_position_changes(run: BacktestRun) -> np.ndarray:
    """Signed fill quantities scattered onto [T, N]."""
    changes = np.zeros_like(run.positions)
    bars = np.searchsorted(run.dates, run.fills["date"].to_numpy())
    columns = [run.tickers.index(t) for t in run.fills["ticker"]]
    sign = np.where(run.fills["side"] == "buy", 1.0, -1.0)
    changes[bars, columns] = sign * run.fills["quantity"].to_numpy()
    return changes


def test_always_hold_leaves_equity_equal_to_cash(market):
    run = simulate(market, ENV, constant(HOLD, market.N))
    assert run.dates.size == market.T
    np.testing.assert_array_equal(run.equity, np.full(market.T, ENV.initial_cash))
    np.testing.assert_array_equal(run.cash, run.equity)
    assert run.fills.empty and not run.positions.any() and not run.gross_exposure.any()
    assert run.metrics()["total_return"] == 0.0


def test_buying_everything_at_the_start_is_the_benchmark(clean_market):
    m = clean_market
    run = simulate(m, ENV, FirstBarOnly(m.N))
    bench = buy_and_hold_benchmark(m, ENV)
    assert run.equity[0] == bench.equity[0] == ENV.initial_cash
    np.testing.assert_allclose(run.equity, bench.equity, rtol=1e-9)
    np.testing.assert_allclose(run.positions, bench.positions, rtol=1e-9)
    pd.testing.assert_frame_equal(run.fills, bench.fills, rtol=1e-9)
    assert (run.fills["date"] == m.dates[1]).all()
    np.testing.assert_allclose(run.fills["price"], m.open[1].astype(float))
    np.testing.assert_allclose(run.fills["cost"].sum(), ENV.initial_cash * (1 - 1 / 1.00125))


def point_in_time_reference(m: MarketData, env: EnvConfig) -> np.ndarray:
    """The point-in-time equal-weight rule, bar by bar and ticker by ticker: equity per bar."""
    rate, cash = env.costs.rate, env.initial_cash
    shares = [0.0] * m.N
    start = next(t for t in range(m.T - 1) if m.tradable[t].any()) + 1
    first = [next((t for t in range(start, m.T) if m.tradable[t, n]), m.T) for n in range(m.N)]
    last = [max([t for t in range(m.T) if m.tradable[t, n]], default=-1) for n in range(m.N)]
    equity, members_before = [], None
    for t in range(m.T):
        if t >= start:
            for n in range(m.N):
                if last[n] == t - 1 and shares[n] > 0:
                    cash += shares[n] * float(m.close[t - 1, n]) * (1 - rate)
                    shares[n] = 0.0
            listed = {n for n in range(m.N) if first[n] <= t <= last[n]}
            if listed != members_before:
                members_before = listed
                trade = [n for n in sorted(listed) if m.tradable[t, n]]
                if trade:
                    price = {n: float(m.open[t, n]) for n in trade}
                    wealth = cash + sum(shares[n] * price[n] for n in trade)
                    value = wealth / len(trade)
                    for _ in range(200):
                        costs = rate * sum(abs(value - shares[n] * price[n]) for n in trade)
                        value = (wealth - costs) / len(trade)
                    cash = 0.0
                    for n in trade:
                        shares[n] = value / price[n]
        equity.append(cash + sum(s * float(m.close[t, n]) for n, s in enumerate(shares)))
    return np.array(equity)


def test_benchmark_matches_a_bar_by_bar_reference(market):
    bench = buy_and_hold_benchmark(market, ENV)
    np.testing.assert_allclose(bench.equity, point_in_time_reference(market, ENV), rtol=1e-9)
    assert accounting_error(bench, market) < 1e-12


def test_benchmark_is_point_in_time(market):
    """Nothing is held or reserved for a ticker before it lists; each listing and delisting
    rebalances to equal weights over the listed tickers, at that bar's open."""
    m = market
    bench = buy_and_hold_benchmark(m, ENV)
    assert bench.equity[0] == ENV.initial_cash and bench.cash.min() >= 0.0
    first = np.argmax(m.tradable[1:], axis=0) + 1
    last = m.T - 1 - np.argmax(m.tradable[::-1], axis=0)
    late, gone = int(np.argmax(first)), int(np.argmin(last))
    assert first[late] > 1 and last[gone] < m.T - 1, "the fixture must list late and delist"
    assert not bench.positions[: first[late], late].any()
    assert bench.cash[first[late] - 1] < 1e-6 * ENV.initial_cash  # no sleeve waiting in cash
    buys = bench.fills[bench.fills["ticker"] == m.tickers[late]]
    assert buys["date"].min() == pd.Timestamp(m.dates[first[late]])
    value = bench.positions[first[late]] * m.open[first[late]].astype(float)
    held = value > 0
    np.testing.assert_allclose(value[held], value[held].mean(), rtol=1e-9)
    sale = bench.fills[(bench.fills["ticker"] == m.tickers[gone]) & (bench.fills["side"] == "sell")]
    assert sale["date"].iloc[-1] == pd.Timestamp(m.dates[last[gone] + 1])
    assert sale["price"].iloc[-1] == pytest.approx(float(m.close[last[gone], gone]))
    assert bench.positions[last[gone] + 1 :, gone].sum() == 0.0


@pytest.mark.parametrize("seed", [0, 1])
def test_recorded_fills_and_positions_reconcile_with_equity(market, seed):
    run = simulate(market, ENV, Random(market.N, seed))
    assert accounting_error(run, market) < 1e-9
    np.testing.assert_allclose(
        np.diff(run.positions, axis=0, prepend=0.0), fills_as_position_changes(run), atol=1e-9
    )
    cash_flow = np.where(run.fills["side"] == "buy", -1.0, 1.0) * run.fills["quantity"] * (
        run.fills["price"]
    ) - run.fills["cost"]
    assert ENV.initial_cash + cash_flow.sum() == pytest.approx(run.cash[-1], rel=1e-9)
    assert (run.fills["date"] > pd.Timestamp(market.dates[0])).all()


def test_cheating_policy_beats_the_benchmark_by_a_wide_margin(market):
    cheat = simulate(market, ENV, Cheater(market)).metrics()
    bench = buy_and_hold_benchmark(market, ENV).metrics()
    assert cheat["total_return"] > bench["total_return"] + 1.0
    assert cheat["sharpe"] > bench["sharpe"] + 3.0


def test_random_policy_does_not_beat_the_benchmark_after_costs(market):
    bench = buy_and_hold_benchmark(market, ENV).metrics()
    runs = [simulate(market, ENV, Random(market.N, seed)).metrics() for seed in range(5)]
    assert np.mean([r["total_return"] for r in runs]) < bench["total_return"]
    assert np.mean([r["sharpe"] for r in runs]) < bench["sharpe"]
    assert all(r["total_costs"] > 5 * bench["total_costs"] for r in runs)


def test_cash_benchmark_and_table(market):
    cash = cash_benchmark(market, ENV)
    table = format_metrics_table(
        {
            "strategy": simulate(market, ENV, Random(market.N, 0)).metrics(),
            "buy_and_hold": buy_and_hold_benchmark(market, ENV).metrics(),
            "cash": cash.metrics(),
        }
    )
    lines = table.splitlines()
    assert lines[0] == "| Metric | Strategy | Buy & hold | Cash |"
    assert len(lines) == 2 + 14
    assert "| Sharpe |" in table and "| Max drawdown |" in table
    assert lines[-1].endswith("| 0.00 |")  # cash pays no costs


# --- a trained model -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tiny_model: TinyModel):
    return tiny_model.result, tiny_model.market


@pytest.fixture(scope="module")
def report(trained, tmp_path_factory):
    result, market = trained
    return run_backtest(
        result.model_path, market, BacktestConfig(top_k=2), tmp_path_factory.mktemp("bt")
    )


def test_backtest_runs_over_the_test_period_only(trained, report):
    result, market = trained
    start = np.datetime64(result.manifest.test_period.start)
    end = np.datetime64(result.manifest.test_period.end)
    train_end = np.datetime64(result.manifest.train_period.end)
    dates = report.strategy.dates
    assert dates[0] == start and dates[-1] == end
    assert dates.size == market.period(start, end).T
    assert (dates > train_end).all()
    assert (report.strategy.fills["date"] > pd.Timestamp(start)).all()
    assert (report.test_start, report.test_end) == (str(start), str(end))


def test_nothing_before_the_test_period_changes_the_backtest(trained, report, tmp_path):
    """Poison every price and feature before the test start: the backtest must not move."""
    result, market = trained
    before = market.dates < np.datetime64(report.test_start)
    features = market.features.copy()
    features[before] = 1e3
    poisoned = MarketData(
        dates=market.dates,
        tickers=market.tickers,
        feature_names=market.feature_names,
        features=features,
        open=np.where(before[:, None], np.float32(7.0), market.open),
        close=np.where(before[:, None], np.float32(3.0), market.close),
        tradable=market.tradable,
    )
    again = run_backtest(result.model_path, poisoned, BacktestConfig(top_k=0), tmp_path)
    np.testing.assert_array_equal(again.strategy.equity, report.strategy.equity)
    assert again.metrics == report.metrics


def test_backtest_writes_its_artifacts(report):
    for key in ("equity", "trades", "positions", "metrics", "equity_plot"):
        assert report.paths[key].is_file(), key
    assert len(report.trade_plots) == min(2, report.strategy.fills["ticker"].nunique())
    for ticker, path in report.trade_plots.items():
        assert path.name == f"backtest_trades_{ticker}.png"
    for path in [report.paths["equity_plot"], *report.trade_plots.values()]:
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000
        image = mpimg.imread(path)
        assert image.ndim == 3 and image.shape[0] > 400 and image.shape[1] > 600
    assert report.equity_thumbnail.startswith(PNG_SIGNATURE)
    assert len(report.equity_thumbnail) < 60_000
    assert not list(report.paths["equity"].parent.glob(".tmp-*"))

    equity = pd.read_parquet(report.paths["equity"])
    assert list(equity.columns) == [
        "strategy_equity",
        "strategy_cash",
        "strategy_gross_exposure",
        "buy_and_hold_equity",
        "buy_and_hold_cash",
        "buy_and_hold_gross_exposure",
        "cash_equity",
    ]
    np.testing.assert_array_equal(equity["strategy_equity"], report.strategy.equity)
    trades = pd.read_parquet(report.paths["trades"])
    assert list(trades.columns) == ["date", "ticker", "side", "quantity", "price", "cost"]
    assert len(trades) == len(report.strategy.fills)
    saved = json.loads(report.paths["metrics"].read_text())
    assert saved["strategy"]["sharpe"] == pytest.approx(report.metrics["strategy"]["sharpe"])
    assert set(saved) >= {"strategy", "buy_and_hold", "cash", "test_period", "model"}
    assert report.accounting_error < 1e-9
    assert report.table == format_metrics_table(report)
    assert report.flat_metrics()["buy_and_hold_total_return"] == (
        report.metrics["buy_and_hold"]["total_return"]
    )
    moved = report.moved_to("/final")
    assert moved.paths["metrics"] == Path("/final/metrics.json")
    assert {p.parent for p in moved.trade_plots.values()} <= {Path("/final")}


def test_reordered_features_are_refused_before_anything_is_written(
    trained, tiny_model: TinyModel, tmp_path
):
    result, _ = trained
    swapped = (FEATURES[1], FEATURES[0], *FEATURES[2:])
    market = build_market(tiny_model.features, tiny_model.ohlcv, feature_names=swapped)
    with pytest.raises(ManifestError, match=r"different order: position 0 is 'f0'.*'f1'"):
        run_backtest(result.model_path, market, BacktestConfig(), tmp_path)
    assert not list(tmp_path.iterdir())


def test_data_not_covering_the_test_period_is_refused(trained, report, tmp_path):
    result, market = trained
    short = market.period(None, np.datetime64(report.test_end) - np.timedelta64(10, "D"))
    with pytest.raises(ManifestError, match="test period"):
        run_backtest(result.model_path, short, BacktestConfig(), tmp_path)


def test_results_in_report_are_strategy_buy_and_hold_and_cash(report):
    assert list(report.metrics) == ["strategy", "buy_and_hold", "cash"]
    assert report.metrics["cash"]["total_return"] == 0.0
    assert Path(report.model_path).name == "final_model.zip"


