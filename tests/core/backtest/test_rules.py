"""ploutos_core.backtest.rules: the momentum rule, run through simulate like any policy."""

from __future__ import annotations

import numpy as np
import pytest

from ploutos_core.backtest import buy_and_hold_benchmark, momentum_actions, momentum_rule, simulate
from ploutos_core.config import EnvConfig
from ploutos_core.data.sample import make_control_market, make_planted_market
from ploutos_core.env.core import BUY, HOLD, SELL
from ploutos_core.market import build_market
from tests.support.markets import random_feature_frames

FEATURES = ("f0", "f1")


def market_of(ohlcv):
    return build_market(random_feature_frames(ohlcv, FEATURES), ohlcv, feature_names=FEATURES)


def test_actions_follow_the_sign_of_the_trailing_return() -> None:
    market = market_of(make_planted_market(5, 300, seed=1))
    actions = momentum_actions(market, 10)
    assert (actions[:10] == HOLD).all()
    up = market.close[10:] > market.close[:-10]
    known = market.tradable[10:] & (market.close[:-10] > 0)
    assert np.array_equal(actions[10:] == BUY, known & up)
    assert np.array_equal(actions[10:] == SELL, known & (market.close[10:] < market.close[:-10]))
    with pytest.raises(ValueError, match="window"):
        momentum_actions(market, 0)


def test_rule_reads_the_bar_of_each_call_with_history_before_the_period() -> None:
    market = market_of(make_planted_market(4, 200, seed=2, late_listing=False))
    start = market.dates[120]
    policy = momentum_rule(market, start, 20)
    expected = momentum_actions(market, 20)
    for bar in range(120, 125):
        assert np.array_equal(policy(np.zeros((1, 1))), expected[bar][None, :])


def test_rule_beats_buy_and_hold_on_the_planted_market_only() -> None:
    env = EnvConfig()
    sharpe = {}
    for name, ohlcv in (
        ("planted", make_planted_market(10, 1500, seed=3, strength=0.3)),
        ("control", make_control_market(10, 1500, seed=3)),
    ):
        market = market_of(ohlcv)
        test = market.period(market.dates[1000])
        rule = simulate(test, env, momentum_rule(market, test.dates[0])).metrics()["sharpe"]
        sharpe[name] = rule - buy_and_hold_benchmark(test, env).metrics()["sharpe"]
    assert sharpe["planted"] > 1.0 > sharpe["control"], sharpe
