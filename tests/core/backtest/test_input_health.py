"""Input health: the share of normalized inputs at the clip bound, per ticker, and of portfolio
values outside their training range."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ploutos_core.artifacts import load_trained_model
from ploutos_core.backtest import run_backtest
from ploutos_core.backtest.input_health import WARN_FRACTION, InputHealthMonitor
from ploutos_core.config import BacktestConfig
from ploutos_core.env import PortfolioVecEnv
from ploutos_core.env.layout import PORTFOLIO_NAMES, ObservationLayout
from ploutos_core.market import MarketData
from tests.core.conftest import TinyModel


def observations(tiny_model: TinyModel, bars: int = 50) -> tuple[np.ndarray, ObservationLayout]:
    market = tiny_model.market
    core = PortfolioVecEnv(market, tiny_model.result.manifest.config.env, n_envs=1).core
    rows = []
    for t in range(market.T - bars, market.T):
        core.t[:] = t
        rows.append(core.observe())
    return np.concatenate(rows), ObservationLayout(market.N, market.F)


def test_inputs_like_training_are_healthy(tiny_model: TinyModel) -> None:
    trained = load_trained_model(tiny_model.result.model_path)
    obs, _ = observations(tiny_model)
    monitor = InputHealthMonitor(trained.obs_stats, tiny_model.market.F)
    monitor.observe(obs)
    health = monitor.report(tiny_model.market.tickers, tiny_model.market.tickers)
    assert health.worst_clipped_fraction < WARN_FRACTION and not health.flagged
    assert health.new_tickers == {}
    assert set(health.portfolio_out_of_range) == set(PORTFOLIO_NAMES)


def test_a_ticker_with_extreme_inputs_is_named(tiny_model: TinyModel) -> None:
    trained = load_trained_model(tiny_model.result.model_path)
    obs, layout = observations(tiny_model)
    tickers = tiny_model.market.tickers
    features = obs[:, layout.features].reshape(len(obs), layout.n_tickers, layout.n_features)
    features[:, 2] = 1e3  # far outside N(0, 1), where the model was trained
    obs[:, layout.features] = features.reshape(len(obs), -1)
    obs[:, layout.portfolio.start + 1] = 50.0  # a trailing return of 5,000%
    monitor = InputHealthMonitor(trained.obs_stats, layout.n_features)
    monitor.observe(obs)
    health = monitor.report(tickers, tickers[:3])
    share = layout.n_features / (layout.n_features + 2)  # features clipped, positions not
    assert health.worst_ticker == tickers[2]
    assert health.worst_clipped_fraction == pytest.approx(share)
    assert health.flagged == [tickers[2]]
    assert health.portfolio_out_of_range["trailing_return"] == 1.0
    assert set(health.new_tickers) == set(tickers[3:])
    assert 0 < health.clipped_fraction < health.worst_clipped_fraction


def test_the_backtest_reports_input_health(tiny_model: TinyModel, tmp_path) -> None:
    market: MarketData = tiny_model.market
    report = run_backtest(tiny_model.result.model_path, market, BacktestConfig(top_k=0), tmp_path)
    saved = json.loads(report.paths["metrics"].read_text())["input_health"]
    assert saved["worst_ticker"] == report.input_health.worst_ticker in market.tickers
    assert saved["clipped_fraction"] == pytest.approx(report.input_health.clipped_fraction)
    assert 0.0 <= saved["worst_clipped_fraction"] <= 1.0
