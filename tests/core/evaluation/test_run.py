"""ploutos_core.evaluation.run: a tiny evaluation, fold x seed, to a verdict."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ploutos_core.config import EvaluationConfig, FoldConfig
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


def synthetic_results(agent_drift: float, seed: int) -> list[FoldResult]:
    """Fold x seed results without training: the agent's returns drift by ``agent_drift``."""
    rng = np.random.default_rng(seed)
    results = []
    for fold in range(3):
        for s in range(3):
            returns = {
                AGENT: rng.normal(agent_drift, 0.01, 80),
                "buy_and_hold": rng.normal(0.0, 0.01, 80),
            }
            metrics = {
                name: {
                    "sharpe": annualized_sharpe(r),
                    "excess_sharpe": annualized_sharpe(r - returns["buy_and_hold"]),
                    "total_return": float(np.prod(1 + r) - 1),
                    "max_drawdown": -0.1,
                    "turnover": 1.0,
                    "costs": 10.0,
                }
                for name, r in returns.items()
            }
            sharpe = metrics[AGENT]["sharpe"]
            results.append(
                FoldResult(fold, s, "2020-01-01", "2020-04-01", returns, metrics,
                           {0.0: sharpe + 0.1, 1.0: sharpe})
            )  # fmt: skip
    return results


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
