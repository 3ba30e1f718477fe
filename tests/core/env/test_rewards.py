"""Differential Sharpe Ratio: the formula by hand, its start-up, and its relation to returns."""

from __future__ import annotations

import numpy as np
import pytest

from ploutos_core.config import RewardConfig
from ploutos_core.env.rewards import (
    VARIANCE_FLOOR_FRACTION,
    DifferentialSharpe,
    differential_sharpe_ratio,
    shaped_reward,
)


def test_formula_against_a_hand_computation() -> None:
    eta, vol = 0.1, 0.01
    # Start: A0 = 0, B0 = vol**2 = 1e-4.
    # Bar 1, R = 0.01: dA = 0.01, dB = 1e-4 - 1e-4 = 0
    #   D1 = (1e-4 * 0.01 - 0.5 * 0 * 0) / (1e-4 - 0) ** 1.5 = 1e-6 / 1e-6 = 1
    #   A1 = 0.001, B1 = 1e-4
    d1 = 1.0
    # Bar 2, R = -0.02: dA = -0.021, dB = 4e-4 - 1e-4 = 3e-4
    #   D2 = (1e-4 * -0.021 - 0.5 * 0.001 * 3e-4) / (1e-4 - 1e-6) ** 1.5
    #   A2 = 0.001 - 0.0021 = -0.0011, B2 = 1e-4 + 3e-5 = 1.3e-4
    d2 = (-2.1e-6 - 1.5e-7) / 9.9e-5**1.5
    # Bar 3, R = 0.005: dA = 0.0061, dB = 2.5e-5 - 1.3e-4 = -1.05e-4
    #   D3 = (1.3e-4 * 0.0061 - 0.5 * -0.0011 * -1.05e-4) / (1.3e-4 - 1.21e-6) ** 1.5
    d3 = (7.93e-7 - 5.775e-8) / 1.2879e-4**1.5
    got = differential_sharpe_ratio(np.array([0.01, -0.02, 0.005]), eta=eta, prior_volatility=vol)
    assert got == pytest.approx([d1, d2, d3], rel=1e-12)
    assert d2 == pytest.approx(-2.2842, abs=1e-4)
    assert d3 == pytest.approx(0.50302, abs=1e-4)


def test_first_step_is_return_in_units_of_prior_volatility() -> None:
    for r in (0.03, -0.004, 0.0):
        first = differential_sharpe_ratio(np.array([r]), eta=0.01, prior_volatility=0.02)[0]
        assert first == pytest.approx(r / 0.02)


@pytest.mark.parametrize("value", [0.0, 0.001, -0.002, 0.05])
def test_finite_on_constant_returns(value: float) -> None:
    dsr = differential_sharpe_ratio(np.full(20_000, value))
    assert np.isfinite(dsr).all()
    if value == 0.0:
        assert (dsr == 0.0).all()


def test_variance_floor_replaces_a_vanishing_variance_estimate() -> None:
    vol = 0.01
    stream = DifferentialSharpe(1, eta=0.5, prior_volatility=vol)
    for _ in range(500):
        stream.step(np.array([0.001]))
    a, b = stream.A[0], stream.B[0]
    floor = (VARIANCE_FLOOR_FRACTION * vol) ** 2
    assert b - a**2 < floor
    expected = (b * (0.01 - a) - 0.5 * a * (0.01**2 - b)) / floor**1.5
    assert stream.step(np.array([0.01]))[0] == pytest.approx(expected)


def test_strongly_correlated_with_returns() -> None:
    returns = np.random.default_rng(0).normal(0.0005, 0.01, 5_000)
    dsr = differential_sharpe_ratio(returns)
    assert np.corrcoef(returns, dsr)[0, 1] > 0.9


def test_streams_are_independent_and_match_the_series_function() -> None:
    returns = np.random.default_rng(1).normal(0.0, 0.02, (50, 3))
    together = differential_sharpe_ratio(returns, eta=0.05)
    for j in range(3):
        alone = differential_sharpe_ratio(returns[:, j], eta=0.05)
        np.testing.assert_array_equal(together[:, j], alone)
    stream = DifferentialSharpe(3, eta=0.05)
    stepped = np.array([stream.step(row) for row in returns])
    np.testing.assert_array_equal(stepped, together)


def test_reset_restarts_only_the_given_streams() -> None:
    stream = DifferentialSharpe(2, eta=0.1)
    stream.step(np.array([0.02, 0.02]))
    stream.reset(np.array([1]))
    out = stream.step(np.array([0.01, 0.01]))
    assert out[1] == pytest.approx(1.0)
    assert out[0] != pytest.approx(1.0)


def test_rejects_invalid_parameters() -> None:
    with pytest.raises(ValueError, match="eta"):
        DifferentialSharpe(1, eta=1.5)
    with pytest.raises(ValueError, match="prior_volatility"):
        DifferentialSharpe(1, prior_volatility=0.0)
    with pytest.raises(ValueError, match="1-D or 2-D"):
        differential_sharpe_ratio(np.zeros((2, 2, 2)))


def test_shaped_reward_penalties_and_clip() -> None:
    dsr = np.array([1.0, 1.0, 50.0, -50.0])
    drawdown = np.array([0.1, 0.0, 0.0, 0.0])
    turnover = np.array([0.0, 2.0, 0.0, 0.0])
    plain = shaped_reward(dsr, drawdown, turnover, RewardConfig())
    np.testing.assert_array_equal(plain, [1.0, 1.0, 10.0, -10.0])
    config = RewardConfig(drawdown_penalty=2.0, turnover_penalty=0.1, clip=5.0)
    shaped = shaped_reward(dsr, drawdown, turnover, config)
    np.testing.assert_allclose(shaped, [0.8, 0.8, 5.0, -5.0])
