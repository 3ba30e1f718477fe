"""The gate promotes when every criterion holds and otherwise says which failed and by how much."""

from __future__ import annotations

import numpy as np

from ploutos_core.config import BootstrapConfig, GateConfig
from ploutos_core.evaluation.aggregate import compare_to_baselines
from ploutos_core.evaluation.gate import VerdictValues, promotion_decision
from ploutos_core.evaluation.overfitting import probability_of_backtest_overfitting

GATE = GateConfig()
GOOD = VerdictValues(
    excess_sharpe_ci_low=0.2,
    dsr=0.97,
    pbo=0.1,
    probability_of_improvement={"cash": 0.9, "momentum": 0.7},
)


def test_an_agent_meeting_every_criterion_is_promoted() -> None:
    assert promotion_decision(GOOD, GATE) == (True, [])


def test_thresholds_are_inclusive() -> None:
    edge = VerdictValues(0.0, 0.95, 0.5, {"cash": 0.6})
    assert promotion_decision(edge, GATE) == (True, [])


def test_each_failure_says_which_criterion_and_by_how_much() -> None:
    bad = VerdictValues(
        excess_sharpe_ci_low=-0.12,
        dsr=0.81,
        pbo=0.62,
        probability_of_improvement={"cash": 0.9, "momentum": 0.55},
    )
    promoted, reasons = promotion_decision(bad, GATE)
    assert not promoted
    assert reasons == [
        "excess Sharpe CI low -0.12 < 0.00 (short by 0.12)",
        "DSR 0.81 < 0.95 (short by 0.14)",
        "probability of improvement over momentum 0.55 < 0.60 (short by 0.05)",
        "PBO 0.62 > 0.50 (over by 0.12)",
    ]


def test_a_near_miss_shows_enough_decimals() -> None:
    promoted, reasons = promotion_decision(VerdictValues(0.2, 0.9496, 0.1, {}), GATE)
    assert not promoted
    assert reasons == ["DSR 0.9496 < 0.9500 (short by 0.0004)"]


def test_without_a_pbo_the_criterion_is_skipped_and_said_so() -> None:
    values = VerdictValues(0.2, 0.97, None, {"cash": 0.9})
    promoted, reasons = promotion_decision(values, GATE)
    assert promoted
    assert len(reasons) == 1 and "PBO not applicable" in reasons[0]
    failing = VerdictValues(0.2, 0.5, None, {})
    promoted, reasons = promotion_decision(failing, GATE)
    assert not promoted and len(reasons) == 2


def test_custom_thresholds_apply() -> None:
    strict = GateConfig(dsr_min=0.99)
    assert promotion_decision(GOOD, strict) == (False, ["DSR 0.97 < 0.99 (short by 0.02)"])


def test_values_from_the_statistics() -> None:
    rng = np.random.default_rng(0)
    scores = {"agent": rng.normal(1.0, 0.1, (5, 5)), "cash": np.zeros((5, 1))}
    comparison = compare_to_baselines(scores, "agent", BootstrapConfig(reps=200))
    pbo = probability_of_backtest_overfitting(rng.normal(0, 0.01, (200, 4)), 4)
    values = VerdictValues.from_results(comparison, dsr=0.99, overfitting=pbo)
    assert values.excess_sharpe_ci_low == comparison.excess_iqm.ci_low
    assert values.probability_of_improvement == {"cash": 1.0}
    assert pbo is not None and values.pbo == pbo.pbo
    assert VerdictValues.from_results(comparison, 0.99, None).pbo is None
    assert values.to_dict()["dsr"] == 0.99
