"""The trading environment: execution rules, accounting, no look-ahead, episodes, both faces."""

from __future__ import annotations

import warnings
from types import ModuleType

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

from ploutos_core.config import CostConfig, EnvConfig, RewardConfig
from ploutos_core.env import PortfolioEnv, PortfolioVecEnv
from ploutos_core.env.layout import ObservationLayout
from ploutos_core.env.rewards import differential_sharpe_ratio
from ploutos_core.errors import DataError
from ploutos_core.market import MarketData
from tests.support import reference_env
from tests.support.markets import random_feature_market

NAMES = ("alpha", "beta")
WARMUP = 5
HOLD, BUY, SELL = 0, 1, 2
COSTS = CostConfig(commission_bps=10.0, spread_bps=20.0, slippage_bps=5.0)
RATE = 0.0025
CASH = 100_000.0


def sample_market(n_tickers: int = 8, n_days: int = 320, *, seed: int = 0) -> MarketData:
    """make_market's OHLCV (late listing, delisting, missing days) with random features."""
    return random_feature_market(n_tickers, n_days, NAMES, seed=seed, warmup=WARMUP)


def array_market(
    close: np.ndarray, tradable: np.ndarray | None = None, open_: np.ndarray | None = None
) -> MarketData:
    """A market with given closes (opens default to the previous close) and random features."""
    close = np.asarray(close, dtype=np.float32)
    T, N = close.shape
    tradable = np.ones((T, N), dtype=bool) if tradable is None else tradable
    if open_ is None:
        open_ = np.vstack([close[:1], close[:-1]])
    open_ = np.asarray(open_, dtype=np.float32)
    features = np.random.default_rng(0).normal(size=(T, N, len(NAMES))).astype(np.float32)
    features[~tradable] = 0.0
    dates = (np.datetime64("2020-01-01") + np.arange(T)).astype("datetime64[ns]")
    return MarketData(dates, [f"T{n}" for n in range(N)], NAMES, features, open_, close, tradable)


@pytest.fixture(scope="module")
def market() -> MarketData:
    return sample_market()


def ticker_tradable_from(market: MarketData, start: int, bars: int) -> int:
    """First ticker tradable on every bar of ``start .. start + bars``."""
    return int(np.argmax(market.tradable[start : start + bars + 1].all(axis=0)))


def backtest_env(market: MarketData, start: int, config: EnvConfig | None = None):
    env = PortfolioVecEnv(
        market,
        config or EnvConfig(costs=COSTS),
        1,
        start_date=market.dates[start],
        run_to_end=True,
    )
    env.reset()
    assert env.core.t[0] == start
    return env


def one_hot(n_tickers: int, orders: dict[int, int] | None = None) -> np.ndarray:
    """One env's action: hold everything except ``orders`` (ticker index -> order)."""
    action = np.zeros((1, n_tickers), dtype=np.int64)
    for ticker, order in (orders or {}).items():
        action[0, ticker] = order
    return action


def test_gymnasium_check_env_passes() -> None:
    env = PortfolioEnv(sample_market(3, 60), EnvConfig(episode_length=10), seed=0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Box observation space .*infinity")
        warnings.filterwarnings("ignore", message=".*not having a spec")
        check_env(env)


def test_vec_env_and_gym_env_agree_step_by_step(market: MarketData) -> None:
    config = EnvConfig(episode_length=12, costs=COSTS)
    vec = PortfolioVecEnv(market, config, 1, seed=5)
    env = PortfolioEnv(market, config, seed=5)
    obs_v = vec.reset()
    obs_g, info_g = env.reset()
    np.testing.assert_array_equal(obs_v[0], obs_g)
    rng = np.random.default_rng(0)
    episodes = 0
    for _ in range(60):
        action = rng.integers(0, 3, market.N)
        obs_v, rewards, dones, infos = vec.step(action[None])
        obs_g, reward, terminated, truncated, info_g = env.step(action)
        assert rewards[0] == np.float32(reward)
        assert dones[0] == (terminated or truncated)
        assert infos[0]["equity"] == info_g["equity"]
        if dones[0]:
            episodes += 1
            np.testing.assert_array_equal(infos[0]["terminal_observation"], obs_g)
            assert infos[0]["TimeLimit.truncated"] == truncated
            for key in ("episode", "episode_sharpe", "episode_turnover", "episode_costs"):
                assert infos[0][key] == info_g[key]
            obs_g, _ = env.reset()
        np.testing.assert_array_equal(obs_v[0], obs_g)
    assert episodes == 5


@pytest.fixture(scope="module")
def reference() -> ModuleType:
    """tests/support/reference_env.py: the same rules, written ticker by ticker in Python."""
    return reference_env


@pytest.mark.parametrize(
    "env_options",
    [{}, {"trailing_window": 7, "buy_fraction": 1.0}, {"observe_reward_state": False}],
    ids=["defaults", "short-window-all-in", "no-reward-state"],
)
def test_core_matches_the_ticker_by_ticker_reference(
    market: MarketData, reference: ModuleType, env_options: dict
) -> None:
    rewards = RewardConfig(drawdown_penalty=0.2, turnover_penalty=0.05)
    config = EnvConfig(episode_length=40, costs=COSTS, reward=rewards, **env_options)
    ref = reference.ReferencePortfolioEnv(
        reference.ticker_series(market), market.dates, config, seed=3
    )
    env = PortfolioEnv(market, config, seed=3)
    (obs_r, _), (obs_e, _) = ref.reset(), env.reset()
    rng = np.random.default_rng(4)
    for _ in range(200):
        np.testing.assert_allclose(obs_e, obs_r, rtol=1e-6, atol=1e-6)
        action = rng.choice(3, size=market.N, p=[0.5, 0.3, 0.2])
        obs_r, reward_r, term_r, trunc_r, info_r = ref.step(action)
        obs_e, reward_e, term_e, trunc_e, info_e = env.step(action)
        assert reward_e == pytest.approx(reward_r, rel=1e-9, abs=1e-12)
        assert info_e["equity"] == pytest.approx(info_r["equity"], rel=1e-12)
        assert (term_e, trunc_e) == (term_r, trunc_r)
        if term_e or trunc_e:
            (obs_r, _), (obs_e, _) = ref.reset(), env.reset()


def test_observation_layout(market: MarketData) -> None:
    env = PortfolioVecEnv(market, EnvConfig(costs=COSTS), 3, seed=1)
    obs = env.reset()
    core = env.core
    N, F = market.N, market.F
    layout = ObservationLayout(N, F)
    assert obs.shape == (3, N * F + 3 * N + 4) == (3, layout.size) and obs.dtype == np.float32
    for e in range(3):
        np.testing.assert_array_equal(obs[e, : N * F], market.features[core.t[e]].ravel())
        assert not obs[e, layout.positions].any()
        np.testing.assert_array_equal(obs[e, layout.tradable], market.tradable[core.t[e]])
        np.testing.assert_array_equal(obs[e, -4:], [1.0, 0.0, 0.0, 0.0])
    for _ in range(3):
        obs, _, dones, _ = env.step(np.full((3, N), BUY))
    assert not dones.any()
    for e in range(3):
        t = core.t[e]
        held = (core.shares[e] > 0) & market.tradable[t]
        assert held.sum() >= 2
        close = market.close[t].astype(np.float64)
        weights = np.where(held, core.shares[e] * close / core.equity[e], 0.0)
        unrealized = np.where(held, close / np.where(held, core.entry_price[e], 1.0) - 1.0, 0.0)
        np.testing.assert_allclose(obs[e, N * F : N * F + N], weights, rtol=1e-6)
        np.testing.assert_allclose(
            obs[e, N * F + N : N * F + 2 * N], unrealized, rtol=1e-5, atol=1e-7
        )
        peak = max(CASH, core.peak[e])
        a, b = core.dsr.A[e], core.dsr.B[e]
        expected = [
            core.cash[e] / core.equity[e],
            core.equity[e] / CASH - 1,  # three bars in: the trailing window reaches the start
            1 - core.equity[e] / peak,
            a / np.sqrt(b - a * a) * np.sqrt(252),
        ]
        np.testing.assert_allclose(obs[e, -4:], expected, rtol=1e-5, atol=1e-7)
    assert np.shares_memory(core.flat_features, market.features)


def perturbed_after(market: MarketData, cut: int, seed: int = 1) -> MarketData:
    """The same market with every price and feature after bar ``cut`` changed."""
    rng = np.random.default_rng(seed)
    later = slice(cut + 1, None)
    features = market.features.copy()
    features[later] = rng.normal(size=features[later].shape) * market.tradable[later][..., None]
    prices = {}
    for name in ("open", "close"):
        prices[name] = getattr(market, name).copy()
        prices[name][later] *= rng.uniform(0.5, 1.5, prices[name][later].shape).astype(np.float32)
    return MarketData(
        market.dates,
        market.tickers,
        market.feature_names,
        features,
        prices["open"],
        prices["close"],
        market.tradable,
    )


def test_no_look_ahead(market: MarketData) -> None:
    start, cut = 40, 55
    envs = [backtest_env(m, start) for m in (market, perturbed_after(market, cut))]
    rng = np.random.default_rng(3)
    for _ in range(25):
        action = rng.integers(0, 3, (1, market.N))
        (obs_a, rew_a, _, info_a), (obs_b, rew_b, _, info_b) = (e.step(action) for e in envs)
        t = envs[0].core.t[0]
        if t <= cut:
            np.testing.assert_array_equal(obs_a, obs_b)
            assert rew_a[0] == rew_b[0] and info_a[0]["equity"] == info_b[0]["equity"]
        else:
            assert not np.array_equal(obs_a, obs_b)


def test_buy_decided_at_t_fills_at_next_open(market: MarketData) -> None:
    start = 60
    k = ticker_tradable_from(market, start, 1)
    assert market.open[start + 1, k] != market.close[start, k]
    env = backtest_env(market, start)
    env.step(one_hot(market.N, {k: BUY}))
    core = env.core
    price = float(market.open[start + 1, k])
    notional = 0.2 * CASH
    assert core.fill_index[0] == start + 1
    assert core.last_fill_price[0, k] == price
    assert core.last_fill_shares[0, k] == pytest.approx(notional / price, rel=1e-12)
    assert core.last_fill_cost[0, k] == pytest.approx(notional * RATE, rel=1e-12)
    assert core.entry_price[0, k] == pytest.approx(price, rel=1e-12)
    assert core.cash[0] == pytest.approx(CASH - notional * (1 + RATE), rel=1e-12)
    others = np.arange(market.N) != k
    assert not core.last_fill_shares[0, others].any() and not core.shares[0, others].any()


def test_round_trip_costs_exactly_as_configured(market: MarketData) -> None:
    start = 60
    k = ticker_tradable_from(market, start, 5)
    env = backtest_env(market, start)
    actions = [BUY, HOLD, HOLD, SELL]
    for order in actions:
        _, _, _, infos = env.step(one_hot(market.N, {k: order}))
    shares = 0.2 * CASH / float(market.open[start + 1, k])
    sale = shares * float(market.open[start + 4, k])
    expected_cash = CASH - 0.2 * CASH * (1 + RATE) + sale * (1 - RATE)
    assert env.core.cash[0] == pytest.approx(expected_cash, rel=1e-12)
    assert env.core.last_fill_cost[0, k] == pytest.approx(sale * RATE, rel=1e-12)
    assert env.core.last_fill_shares[0, k] == pytest.approx(-shares, rel=1e-12)
    assert infos[0]["equity"] == pytest.approx(expected_cash, rel=1e-12)
    assert not env.core.shares.any() and not env.core.entry_price.any()


def test_buys_are_capped_and_scaled_to_the_cash() -> None:
    close = np.full((6, 4), 50.0)
    no_costs = CostConfig(commission_bps=0, spread_bps=0, slippage_bps=0)
    capped = EnvConfig(buy_fraction=0.5, max_position_weight=0.25, costs=no_costs)
    env = backtest_env(array_market(close), 0, capped)
    env.step(one_hot(4, {0: BUY}))
    assert env.core.shares[0, 0] * 50.0 == pytest.approx(0.25 * CASH)
    env.step(one_hot(4, {0: BUY}))
    assert env.core.shares[0, 0] * 50.0 == pytest.approx(0.25 * CASH)
    scaled = EnvConfig(buy_fraction=0.5, max_position_weight=1.0, costs=COSTS)
    env = backtest_env(array_market(close), 0, scaled)
    env.step(one_hot(4, {0: BUY, 1: BUY, 3: BUY}))
    notional = env.core.last_fill_shares[0] * env.core.last_fill_price[0]
    np.testing.assert_allclose(
        notional, [CASH / 3 / (1 + RATE)] * 2 + [0] + [CASH / 3 / (1 + RATE)]
    )
    assert abs(env.core.cash[0]) < 1e-6


def test_holdings_without_a_bar_count_at_their_last_close_in_the_cap() -> None:
    close = np.array([[100.0, 50.0], [100.0, 50.0], [120.0, 50.0], [120.0, 50.0], [120.0, 50.0]])
    open_ = close.copy()
    open_[2:4, 0] = 100.0  # bar 3 of T0 is missing: its open is forward-filled from bar 2
    tradable = np.ones((5, 2), dtype=bool)
    tradable[3, 0] = False
    no_costs = CostConfig(commission_bps=0, spread_bps=0, slippage_bps=0)
    config = EnvConfig(buy_fraction=1.0, max_position_weight=0.4, costs=no_costs)
    env = backtest_env(array_market(close, tradable, open_), 0, config)
    env.step(one_hot(2, {0: BUY}))
    env.step(one_hot(2))
    env.step(one_hot(2, {1: BUY}))
    # equity at the open of bar 3: 60,000 cash + 400 shares at T0's last close of 120.
    assert env.core.shares[0, 0] == 400.0
    assert env.core.last_fill_shares[0, 1] * 50.0 == pytest.approx(0.4 * 108_000.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fills_explain_cash_and_equity(seed: int) -> None:
    market = sample_market(seed=seed)
    n_envs = 4
    env = PortfolioVecEnv(market, EnvConfig(episode_length=30, costs=COSTS), n_envs, seed=seed)
    env.reset()
    core = env.core
    cash = np.full(n_envs, CASH)
    shares = np.zeros((n_envs, market.N))
    rng = np.random.default_rng(seed)
    for _ in range(150):
        _, _, dones, infos = env.step(rng.integers(0, 3, (n_envs, market.N)))
        notional = core.last_fill_shares * core.last_fill_price
        np.testing.assert_allclose(core.last_fill_cost, np.abs(notional) * RATE, rtol=1e-12)
        cash -= notional.sum(axis=1) + core.last_fill_cost.sum(axis=1)
        shares += core.last_fill_shares
        bought = core.last_fill_shares > 0
        assert market.tradable[core.fill_index][bought].all()
        holdings = (shares * market.close[core.fill_index]).sum(axis=1)
        np.testing.assert_allclose(cash + holdings, [i["equity"] for i in infos], rtol=1e-10)
        assert (cash > -1e-6).all() and (shares > -1e-9).all()
        live = ~dones
        np.testing.assert_allclose(core.cash[live], cash[live], rtol=1e-10, atol=1e-6)
        np.testing.assert_allclose(core.shares[live], shares[live], rtol=1e-10, atol=1e-12)
        cash[dones] = CASH
        shares[dones] = 0.0


def test_always_hold_keeps_equity_constant(market: MarketData) -> None:
    env = PortfolioVecEnv(market, EnvConfig(episode_length=40, costs=COSTS), 4, seed=0)
    env.reset()
    episodes = 0
    for _ in range(120):
        obs, rewards, dones, infos = env.step(np.zeros((4, market.N), dtype=np.int64))
        assert [i["equity"] for i in infos] == [CASH] * 4
        assert not rewards.any()
        assert not obs[:, ObservationLayout(market.N, market.F).positions].any()
        np.testing.assert_array_equal(obs[:, -4:], [[1.0, 0.0, 0.0, 0.0]] * 4)
        episodes += int(dones.sum())
    assert episodes == 12


def test_determinism_under_a_seed(market: MarketData) -> None:
    def run(seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        env = PortfolioVecEnv(market, EnvConfig(episode_length=10, costs=COSTS), 8, seed=seed)
        observations, rewards = [env.reset()], []
        rng = np.random.default_rng(0)
        for _ in range(35):
            obs, reward, _, _ = env.step(rng.integers(0, 3, (8, market.N)))
            observations.append(obs)
            rewards.append(reward)
        return observations, rewards

    first, again, other = run(11), run(11), run(12)
    for a, b in zip(first[0] + first[1], again[0] + again[1], strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0][0], other[0][0])


def test_seed_method_reseeds_the_next_reset(market: MarketData) -> None:
    env = PortfolioVecEnv(market, EnvConfig(), 6, seed=1)
    fresh = PortfolioVecEnv(market, EnvConfig(), 6, seed=99)
    assert env.seed(99) == [99] * 6
    np.testing.assert_array_equal(env.reset(), fresh.reset())


def test_untradable_tickers_never_get_a_position() -> None:
    market = sample_market(6, 200, seed=4)
    tradable = market.tradable.copy()
    tradable[:, 2] = False
    tradable[100:110, 3] = False
    features = market.features * tradable[..., None]
    market = MarketData(
        market.dates,
        market.tickers,
        market.feature_names,
        features,
        market.open,
        market.close,
        tradable,
    )
    env = PortfolioVecEnv(market, EnvConfig(episode_length=50, buy_fraction=0.05), 8, seed=0)
    env.reset()
    rng = np.random.default_rng(0)
    for _ in range(80):
        actions = rng.choice(3, size=(8, market.N), p=[0.2, 0.6, 0.2])
        obs, _, _, _ = env.step(actions)
        core = env.core
        assert market.tradable[core.fill_index][core.last_fill_shares > 0].all()
        assert not core.shares[:, 2].any()
        untradable_now = ~market.tradable[core.t]
        F = market.F
        features = obs[:, : market.N * F].reshape(8, market.N, F)
        assert not features[untradable_now].any()
        assert not obs[:, market.N * F : market.N * (F + 1)][untradable_now].any()


def test_orders_on_a_missing_day_are_ignored() -> None:
    close = np.full((8, 2), 20.0)
    tradable = np.ones((8, 2), dtype=bool)
    tradable[3, 0] = False
    env = backtest_env(array_market(close, tradable), 0)
    env.step(one_hot(2, {0: BUY}))
    held = env.core.shares[0, 0]
    env.step(one_hot(2, {0: HOLD}))
    env.step(one_hot(2, {0: SELL}))
    assert env.core.fill_index[0] == 3
    assert env.core.shares[0, 0] == held and not env.core.last_fill_shares.any()
    env.step(one_hot(2, {0: BUY}))
    assert env.core.shares[0, 0] > held


def test_position_in_a_stopped_ticker_is_closed_at_its_last_close(market: MarketData) -> None:
    last = np.array([np.flatnonzero(market.tradable[:, n]).max() for n in range(market.N)])
    gone = int(np.argmin(last))
    stop = int(last[gone])
    assert stop < market.T - 2
    env = backtest_env(market, stop - 3)
    env.step(one_hot(market.N, {gone: BUY}))
    shares = env.core.shares[0, gone]
    assert shares > 0
    for _ in range(2):
        env.step(one_hot(market.N))
        assert env.core.shares[0, gone] == shares
    _, _, _, infos = env.step(one_hot(market.N, {gone: BUY}))
    core = env.core
    assert core.fill_index[0] == stop + 1
    assert core.shares[0, gone] == 0.0
    assert core.last_fill_shares[0, gone] == -shares
    assert core.last_fill_price[0, gone] == market.close[stop, gone]
    proceeds = shares * float(market.close[stop, gone])
    assert core.last_fill_cost[0, gone] == pytest.approx(proceeds * RATE, rel=1e-12)
    assert infos[0]["equity"] == pytest.approx(core.cash[0], rel=1e-12)


def test_episodes_are_truncated_after_episode_length(market: MarketData) -> None:
    env = PortfolioVecEnv(market, EnvConfig(episode_length=5, costs=COSTS), 2, seed=0)
    env.reset()
    rng = np.random.default_rng(0)
    total = np.zeros(2)
    for step in range(1, 6):
        _, rewards, dones, infos = env.step(rng.integers(0, 3, (2, market.N)))
        total += rewards
        assert dones.all() == (step == 5)
    for info, expected in zip(infos, total, strict=True):
        assert info["TimeLimit.truncated"] is True
        assert info["episode"]["l"] == 5 and info["episode"]["t"] == 0.0
        assert info["episode"]["r"] == pytest.approx(expected, rel=1e-6)
        assert info["terminal_observation"].shape == env.observation_space.shape
        assert info["episode_costs"] > 0 and info["episode_turnover"] > 0
        assert np.isfinite(info["episode_sharpe"])
    assert (env.core.steps == 0).all()


def test_backtest_mode_runs_to_the_end_of_the_data(market: MarketData) -> None:
    start = market.T - 30
    env = backtest_env(market, start, EnvConfig(episode_length=5))
    for step in range(1, 30):
        _, _, dones, infos = env.step(one_hot(market.N))
        assert dones[0] == (step == 29)
    assert infos[0]["episode"]["l"] == 29 and infos[0]["TimeLimit.truncated"]
    assert env.core.t[0] == start


def test_terminated_when_equity_falls_below_the_floor() -> None:
    close = np.array([[100.0, 10.0]] * 3 + [[30.0, 10.0]] * 5)
    config = EnvConfig(buy_fraction=1.0, max_position_weight=1.0, min_equity_fraction=0.5)
    env = backtest_env(array_market(close), 0, config)
    for expected_done in (False, False, True):
        _, _, dones, infos = env.step(one_hot(2, {0: BUY}))
        assert dones[0] == expected_done
    assert infos[0]["TimeLimit.truncated"] is False
    assert infos[0]["equity"] < 0.5 * CASH


def test_reward_is_the_dsr_of_equity_returns(market: MarketData) -> None:
    reward_config = RewardConfig(eta=0.05, drawdown_penalty=0.5, turnover_penalty=0.1, clip=3.0)
    config = EnvConfig(costs=COSTS, reward=reward_config)
    env = backtest_env(market, 30, config)
    rng = np.random.default_rng(1)
    equity, rewards, turnover = [CASH], [], []
    for _ in range(100):
        _, reward, _, infos = env.step(rng.integers(0, 3, (1, market.N)))
        traded = np.abs(env.core.last_fill_shares * env.core.last_fill_price).sum()
        turnover.append(traded / equity[-1])
        equity.append(infos[0]["equity"])
        rewards.append(reward[0])
    equity = np.array(equity)
    dsr = differential_sharpe_ratio(equity[1:] / equity[:-1] - 1, 0.05, 0.01)
    drawdown = 1 - equity[1:] / np.maximum.accumulate(equity)[1:]
    expected = np.clip(dsr - 0.5 * drawdown - 0.1 * np.array(turnover), -3.0, 3.0)
    assert np.abs(expected).max() == 3.0
    np.testing.assert_allclose(rewards, expected.astype(np.float32), rtol=1e-5, atol=1e-6)


def test_starts_leave_room_for_a_full_episode(market: MarketData) -> None:
    env = PortfolioVecEnv(market, EnvConfig(episode_length=100), 64, seed=0)
    starts = np.concatenate([env.core.t.copy() for _ in range(5) if env.reset() is not None])
    assert market.tradable[starts].any(axis=1).all()
    assert starts.max() <= market.T - 1 - 100
    assert len(np.unique(starts)) > 50


def test_a_short_period_truncates_at_its_end(market: MarketData) -> None:
    period = market.period(market.dates[100], market.dates[119])
    env = PortfolioVecEnv(period, EnvConfig(episode_length=252), 1, seed=0)
    env.reset()
    start = env.core.t[0]
    assert start <= period.T - 2
    for _ in range(period.T - 1 - start):
        _, _, dones, infos = env.step(one_hot(market.N))
    assert dones[0] and infos[0]["TimeLimit.truncated"]


def test_invalid_periods_and_dates_raise(market: MarketData) -> None:
    with pytest.raises(DataError, match="no bar on or after 2099-01-01"):
        PortfolioVecEnv(market, EnvConfig(), 1, start_date="2099-01-01")
    warmup_only = market.period(None, market.dates[WARMUP - 1])
    with pytest.raises(DataError, match="no bar with a tradable ticker"):
        PortfolioEnv(warmup_only, EnvConfig())


def test_vec_env_attribute_access(market: MarketData) -> None:
    env = PortfolioVecEnv(market, EnvConfig(), 3, seed=0)
    env.reset()
    env.step(np.full((3, market.N), BUY))
    assert env.get_attr("cash") == list(env.core.cash)
    assert env.get_attr("equity", indices=[2]) == [env.core.equity[2]]
    assert env.get_attr("render_mode") == [None, None, None]
    assert env.env_is_wrapped(VecNormalize) == [False, False, False]
    env.set_attr("config", EnvConfig(buy_fraction=0.1))
    assert env.config.buy_fraction == 0.1
    with pytest.raises(AttributeError, match="some sub-envs only"):
        env.set_attr("cash", 0.0, indices=[0])
    assert env.env_method("get_attr", "t", indices=[0, 1]) == [list(env.core.t)] * 2


def test_trains_under_vec_normalize_with_ppo(market: MarketData) -> None:
    venv = VecNormalize(PortfolioVecEnv(market, EnvConfig(episode_length=8), 4, seed=0))
    model = PPO(
        "MlpPolicy",
        venv,
        n_steps=16,
        batch_size=32,
        n_epochs=1,
        seed=0,
        device="cpu",
        policy_kwargs={"net_arch": [16]},
    )
    model.learn(128)
    assert len(model.ep_info_buffer) >= 12
    assert {"r", "l", "t"} <= set(model.ep_info_buffer[0])
    obs = venv.reset()
    assert np.isfinite(obs).all() and np.abs(obs).max() <= venv.clip_obs


def test_spending_all_the_cash_never_leaves_it_negative_nor_warns(market: MarketData) -> None:
    env = PortfolioVecEnv(market, EnvConfig(buy_fraction=1.0, costs=COSTS), 4, seed=2)
    env.reset()
    rng = np.random.default_rng(5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a divide-by-zero RuntimeWarning fails the test
        for _ in range(300):
            env.step(rng.choice(3, size=(4, market.N), p=[0.2, 0.7, 0.1]))
            assert (env.core.cash >= 0.0).all()
