"""Fold x seed results built without training, for the verdict, its plots and its report."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ploutos_core.config import BootstrapConfig, EvaluationConfig
from ploutos_core.evaluation.run import AGENT, FoldResult, Verdict, annualized_sharpe, judge
from ploutos_core.evaluation.trials import TrialRegistry
from tests.support.configs import tiny_training

BOOTSTRAP = BootstrapConfig(reps=200)


def synthetic_results(
    agent_drift: float, seed: int, *, n_folds: int = 3, n_seeds: int = 3, bars: int = 80
) -> list[FoldResult]:
    """Fold x seed results whose agent's per-bar returns drift by ``agent_drift`` beside a
    driftless buy-and-hold; the agent's Sharpe at cost multiplier 0 is its own plus 0.1, and
    buy-and-hold's is its own at every multiplier."""
    rng = np.random.default_rng(seed)
    results = []
    for fold in range(n_folds):
        for s in range(n_seeds):
            returns = {
                AGENT: rng.normal(agent_drift, 0.01, bars),
                "buy_and_hold": rng.normal(0.0, 0.01, bars),
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
            sharpe, held = metrics[AGENT]["sharpe"], metrics["buy_and_hold"]["sharpe"]
            results.append(
                FoldResult(
                    fold, s, f"202{fold}-01-01", f"202{fold}-04-01", returns, metrics,
                    {0.0: sharpe + 0.1, 1.0: sharpe}, cost_benchmark_sharpe={0.0: held, 1.0: held},
                )
            )  # fmt: skip
    return results


def synthetic_verdict(results: Sequence[FoldResult], trials: Path) -> Verdict:
    """The verdict of :func:`synthetic_results` against buy-and-hold (cost multipliers 0 and 1,
    :data:`BOOTSTRAP`), the trial registered in ``trials``."""
    config = EvaluationConfig(
        seeds=sorted({r.seed for r in results}),
        baselines=["buy_and_hold"],
        cost_multipliers=[0.0, 1.0],
        bootstrap=BOOTSTRAP,
    )
    return judge(results, config, TrialRegistry(trials), "data", tiny_training())
