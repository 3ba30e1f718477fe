"""ploutos_core.evaluation.baselines: rule baselines through simulate, no look-ahead, seeded."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ploutos_core.config import EnvConfig
from ploutos_core.env.core import BUY, HOLD, SELL
from ploutos_core.errors import ConfigError
from ploutos_core.evaluation.baselines import (
    REBALANCE_BARS,
    baseline_policy,
    mean_reversion_actions,
    momentum_12_1_actions,
    run_baselines,
)
from tests.support.markets import random_feature_market

FEATURES = ("f0", "f1")
RULES = ("random", "momentum", "mean_reversion")


@pytest.fixture(scope="module")
def market():
    return random_feature_market(6, 400, FEATURES, seed=3)


def poisoned(market, after: int, seed: int = 99):
    """The market with every price after bar ``after`` replaced by noise."""
    rng = np.random.default_rng(seed)
    close, open_ = market.close.copy(), market.open.copy()
    close[after + 1 :] *= rng.uniform(0.2, 5.0, close[after + 1 :].shape).astype(close.dtype)
    open_[after + 1 :] *= rng.uniform(0.2, 5.0, open_[after + 1 :].shape).astype(open_.dtype)
    return dataclasses.replace(market, close=close, open=open_)


def replay(policy, n: int) -> np.ndarray:
    return np.stack([policy(np.zeros((1, 1)))[0] for _ in range(n)])


@pytest.mark.parametrize("name", RULES)
def test_the_action_at_t_does_not_depend_on_later_bars(market, name) -> None:
    start = 300
    test = market.period(market.dates[start], market.dates[-1])
    clean = replay(baseline_policy(name, market, test, seed=1), 60)
    for t in (0, 17, 45):
        bad = poisoned(market, start + t)
        bad_test = bad.period(bad.dates[start], bad.dates[-1])
        dirty = replay(baseline_policy(name, bad, bad_test, seed=1), 60)
        assert np.array_equal(clean[: t + 1], dirty[: t + 1]), (name, t)


def test_momentum_rebalances_every_21_bars_and_keeps_its_targets(market) -> None:
    first = 300
    actions = momentum_12_1_actions(market, first)
    assert (actions[:first] == HOLD).all()
    month = actions[first : first + REBALANCE_BARS]
    # Between rebalances no sell and the bought set does not change.
    assert not (month[1:] == SELL).any()
    bought = month == BUY
    assert (bought[1:] <= bought[0]).all()
    assert bought[0].sum() >= 1


def test_mean_reversion_buys_the_worst_and_sells_after_holding(market) -> None:
    first = 300
    actions = mean_reversion_actions(market, first)
    t = first
    ret = market.close[t] / market.close[t - 5] - 1
    ok = market.tradable[t]
    worst = np.flatnonzero(ok)[np.argmin(ret[ok])]
    assert actions[t, worst] == BUY
    assert (actions[first:] == SELL).any()


def test_runs_are_deterministic_by_seed_and_share_the_costs(market) -> None:
    env = EnvConfig()
    test = market.period(market.dates[300], market.dates[-1])
    names = ["buy_and_hold", "cash", *RULES]
    a = run_baselines(names, market, test, env, seed=5)
    b = run_baselines(names, market, test, env, seed=5)
    c = run_baselines(["random"], market, test, env, seed=6)
    assert list(a) == names
    for name in names:
        assert np.array_equal(a[name].equity, b[name].equity)
        assert a[name].equity.shape == (test.T,)
    assert not np.array_equal(a["random"].equity, c["random"].equity)
    assert np.allclose(a["cash"].equity, env.initial_cash)
    assert a["random"].metrics()["total_costs"] > 0
    with pytest.raises(ConfigError, match="unknown baseline"):
        run_baselines(["nope"], market, test, env, seed=5)
