"""ploutos_core.evaluation.run: a tiny evaluation, fold x seed, to a verdict."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from ploutos_core.config import EvaluationConfig, FoldConfig
from ploutos_core.evaluation.aggregate import interquartile_mean
from ploutos_core.evaluation.folds import make_folds
from ploutos_core.evaluation.run import (
    AGENT,
    EvaluationError,
    FoldResult,
    annualized_sharpe,
    evaluate_fold,
    fold_split,
    judge,
    run_evaluation,
    scaled_costs,
)
from ploutos_core.evaluation.trials import TrialRegistry
from tests.support.configs import tiny_training
from tests.support.evaluation import synthetic_results
from tests.support.markets import random_feature_market

FEATURES = ("f0", "f1")
BASELINES = ["buy_and_hold", "cash", "random", "momentum", "mean_reversion"]
KEYS = {
    "n_folds", "seeds", "n_trials", "agent", *BASELINES, "prob_improvement", "psr", "dsr",
    "pbo", "cost_sensitivity", "promoted", "reasons",
}  # fmt: skip


@pytest.fixture(scope="module")
def market():
    return random_feature_market(3, 400, FEATURES, seed=4)


def evaluation_config() -> EvaluationConfig:
    return EvaluationConfig(
        folds=FoldConfig(n_folds=2, min_train_days=250, test_days=60, purge_days=5),
        seeds=[0, 1],
        baselines=BASELINES,
        cost_multipliers=[0.0, 1.0, 2.0],
        bootstrap={"reps": 200},
    )


def training():
    return tiny_training(total_timesteps=256, n_envs=2, n_steps=64, batch_size=64)


def test_fold_split_tests_from_the_fold_test_start(market) -> None:
    fold = make_folds(market.dates, evaluation_config().folds)[1]
    window = market.period(fold.train_start, fold.test_end)
    split = fold_split(window, fold)
    assert split.train_end == fold.train_end
    assert split.embargo_days == 5  # the 5 purged bars lie strictly between
    assert scaled_costs(tiny_training().env, 2.0).costs.rate == pytest.approx(
        2 * tiny_training().env.costs.rate
    )
    assert annualized_sharpe(np.zeros(5)) == 0.0


def test_fold_result_round_trips_through_json(market, tmp_path) -> None:
    fold = make_folds(market.dates, evaluation_config().folds)[0]
    result = evaluate_fold(
        training(), market, fold, 3, tmp_path, baselines=["buy_and_hold", "random"],
        cost_multipliers=[1.0, 3.0],
    )  # fmt: skip
    assert (result.test_start, result.test_end) == (fold.test_start, fold.test_end)
    assert set(result.metrics) == {AGENT, "buy_and_hold", "random"}
    assert result.returns[AGENT].shape == (59,)
    assert result.metrics["buy_and_hold"]["excess_sharpe"] == 0.0
    assert result.cost_sharpe[1.0] == result.metrics[AGENT]["sharpe"]
    held = result.cost_benchmark_sharpe
    assert held[1.0] == result.metrics["buy_and_hold"]["sharpe"]
    assert held[3.0] < held[1.0]  # buy-and-hold pays its entry costs three times over
    again = FoldResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.to_dict() == result.to_dict()


def test_tiny_evaluation_gives_a_reproducible_verdict_and_no_promotion(market, tmp_path) -> None:
    config = evaluation_config()
    verdicts = []
    for run in ("a", "b"):
        registry = TrialRegistry(tmp_path / run / "trials.json")
        verdict = run_evaluation(training(), config, market, tmp_path / run / "eval", registry)
        written = json.loads((tmp_path / run / "eval" / "verdict.json").read_text())
        assert written == json.loads(json.dumps(verdict.to_dict()))
        verdicts.append(written)
        assert len(list((tmp_path / run / "eval" / "folds").glob("*.json"))) == 4
    first, second = verdicts
    assert set(first) >= KEYS
    assert first == second
    assert first["n_folds"] == 2 and first["seeds"] == [0, 1] and first["n_trials"] == 1
    for method in [AGENT, *BASELINES]:
        for score in ("sharpe", "excess_sharpe"):
            assert set(first[method][score]) == {"iqm", "ci_low", "ci_high"}
    assert set(first["prob_improvement"]) == set(BASELINES)
    assert first["pbo"] is None
    assert set(first["cost_sensitivity"]) == {"0", "1", "2"}
    assert first["promoted"] is False
    assert first["reasons"] and all(isinstance(r, str) for r in first["reasons"])
    assert 0.0 <= first["psr"] <= 1.0 and 0.0 <= first["dsr"] <= 1.0


def test_judge_counts_trials_and_estimates_pbo_from_the_second(tmp_path) -> None:
    config = EvaluationConfig(
        seeds=[0, 1, 2], baselines=["buy_and_hold"], cost_multipliers=[0.0, 1.0],
        bootstrap={"reps": 200},
    )  # fmt: skip
    registry = TrialRegistry(tmp_path / "trials.json")
    first = judge(synthetic_results(0.002, 1), config, registry, "data", tiny_training())
    assert first.n_trials == 1 and first.pbo is None
    assert any("PBO not applicable" in r for r in first.reasons)
    out = tmp_path / "verdict.json"
    second = judge(
        synthetic_results(0.0, 2), config, registry, "data", tiny_training(n_epochs=2),
        output_path=out,
    )  # fmt: skip
    assert second.n_trials == 2
    assert second.pbo is not None and 0.0 <= second.pbo <= 1.0
    assert json.loads(out.read_text())["n_trials"] == 2
    assert first.to_dict()["agent"]["sharpe"]["iqm"] > second.to_dict()["agent"]["sharpe"]["iqm"]
    with pytest.raises(EvaluationError, match="grid"):
        judge(synthetic_results(0.0, 2)[:-1], config, registry, "data", tiny_training())


def test_cost_sensitivity_says_where_the_agent_stops_beating_buy_and_hold(tmp_path) -> None:
    config = EvaluationConfig(
        seeds=[0, 1, 2], baselines=["buy_and_hold"], cost_multipliers=[0.0, 1.0, 2.0],
        bootstrap={"reps": 200},
    )  # fmt: skip
    agent = {0.0: 1.5, 1.0: 0.8, 2.0: 0.1}
    held = {0.0: 0.6, 1.0: 0.5, 2.0: 0.4}
    results = [
        replace(
            r,
            cost_sharpe={m: v + 0.01 * r.fold - 0.02 * r.seed for m, v in agent.items()},
            cost_benchmark_sharpe={m: v + 0.03 * r.fold for m, v in held.items()},
        )
        for r in synthetic_results(0.001, 3)
    ]
    registry = TrialRegistry(tmp_path / "trials.json")
    sensitivity = judge(results, config, registry, "data", tiny_training()).cost_sensitivity
    assert list(sensitivity) == ["0", "1", "2"]
    assert [e["beats_buy_and_hold"] for e in sensitivity.values()] == [True, True, False]
    for multiplier, entry in zip((0.0, 1.0, 2.0), sensitivity.values(), strict=True):
        agent_scores = np.array([[r.cost_sharpe[multiplier]] for r in results]).reshape(3, 3)
        assert entry["iqm"] == pytest.approx(interquartile_mean(agent_scores))
        assert entry["ci_low"] <= entry["iqm"] <= entry["ci_high"]
        assert entry["buy_and_hold"]["iqm"] == pytest.approx(held[multiplier] + 0.03)

    old = [
        FoldResult.from_dict({k: v for k, v in r.to_dict().items() if k != "cost_benchmark_sharpe"})
        for r in results
    ]
    entry = judge(old, config, registry, "data", tiny_training()).cost_sensitivity["2"]
    assert entry["iqm"] == sensitivity["2"]["iqm"]
    assert entry["buy_and_hold"] is None and entry["beats_buy_and_hold"] is None
