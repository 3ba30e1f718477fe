"""Judging an agent: train and backtest it on every fold x seed, run the baselines over the same
test windows and costs, and turn the scores into a :class:`Verdict`.

- :func:`evaluate_fold`: one fold and one seed, a :class:`FoldResult` (JSON round-trippable):
  :func:`train_fold` then :func:`backtest_fold` (the Dagster assets run them as two steps).
- :func:`judge`: all the results, the trial registry and the gate, a :class:`Verdict`.
- :func:`run_evaluation`: both, with the files (``folds/fold<F>_seed<S>.json``, the models and
  backtests under ``folds/fold<F>_seed<S>/``, and ``verdict.json``).

Units. Every Sharpe ratio of a method (``sharpe``, ``excess_sharpe``, the cost sensitivity) is
annualized as in :mod:`ploutos_core.backtest.metrics` (``mean / std * sqrt(252)`` of per-bar
returns); ``excess_sharpe`` is the Sharpe ratio of the method's per-bar returns minus
buy-and-hold's over the same bars. PSR and DSR are probabilities computed from per-bar returns.

The agent's out-of-sample series (for PSR, DSR, the trial registry and PBO) is, bar by bar, the
mean over seeds of the agent's per-bar returns, fold test windows concatenated in fold order.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ploutos_core.backtest.metrics import json_safe
from ploutos_core.backtest.simulate import BacktestRun, simulate
from ploutos_core.config import (
    BacktestConfig,
    EnvConfig,
    EvaluationConfig,
    SplitConfig,
    TrainingConfig,
)
from ploutos_core.errors import ConfigError, PloutosError
from ploutos_core.evaluation.aggregate import compare_to_baselines, iqm_interval
from ploutos_core.evaluation.baselines import run_baselines
from ploutos_core.evaluation.folds import Fold, make_folds
from ploutos_core.evaluation.gate import VerdictValues, promotion_decision
from ploutos_core.evaluation.overfitting import probability_of_backtest_overfitting
from ploutos_core.evaluation.sharpe import deflated_sharpe_ratio_of, probabilistic_sharpe_ratio_of
from ploutos_core.evaluation.trials import TrialRegistry, trial_key
from ploutos_core.market import MarketData
from ploutos_core.market.dates import BARS_PER_YEAR, iso_day
from ploutos_core.storage import write_json_atomic

if TYPE_CHECKING:
    from stable_baselines3.common.callbacks import BaseCallback

AGENT = "agent"
VERDICT_FILE = "verdict.json"
FOLDS_DIR = "folds"
METRIC_KEYS = ("sharpe", "excess_sharpe", "total_return", "max_drawdown", "turnover", "costs")


class EvaluationError(PloutosError):
    """A fold's trained model does not cover the fold's test window, or results do not fit."""


def per_bar_returns(equity: np.ndarray) -> np.ndarray:
    """``e[i] / e[i-1] - 1``, ``len(equity) - 1`` values."""
    e = np.asarray(equity, dtype=np.float64)
    return e[1:] / e[:-1] - 1.0


def annualized_sharpe(returns: np.ndarray) -> float:
    """``mean / std(ddof=1) * sqrt(252)``; 0 for fewer than 2 returns or a flat series."""
    r = np.asarray(returns, dtype=np.float64)
    if r.size < 2:
        return 0.0
    std = float(np.std(r, ddof=1))
    if not np.isfinite(std) or std <= 1e-12 * max(float(np.sqrt(np.mean(r**2))), 1e-300):
        return 0.0
    return float(np.mean(r) / std * np.sqrt(BARS_PER_YEAR))


def method_metrics(run: BacktestRun, benchmark_returns: np.ndarray) -> dict[str, float]:
    """The verdict's metrics (:data:`METRIC_KEYS`) of ``run`` against buy-and-hold's per-bar
    returns over the same bars."""
    m = run.metrics()
    returns = per_bar_returns(run.equity)
    return {
        "sharpe": float(m["sharpe"]),
        "excess_sharpe": annualized_sharpe(returns - benchmark_returns),
        "total_return": float(m["total_return"]),
        "max_drawdown": float(m["max_drawdown"]),
        "turnover": float(m["annual_turnover"]),
        "costs": float(m["total_costs"]),
    }


def scaled_costs(env_config: EnvConfig, multiplier: float) -> EnvConfig:
    """``env_config`` with every cost (commission, spread, slippage) times ``multiplier``."""
    costs = env_config.costs
    scaled = costs.model_copy(
        update={
            "commission_bps": costs.commission_bps * multiplier,
            "spread_bps": costs.spread_bps * multiplier,
            "slippage_bps": costs.slippage_bps * multiplier,
        }
    )
    return env_config.model_copy(update={"costs": scaled})


@dataclass(frozen=True)
class FoldResult:
    """One fold x seed: per method (``agent``, ``buy_and_hold`` and each baseline) the per-bar
    returns of the test window and its metrics (:data:`METRIC_KEYS`), and at each cost
    multiplier the agent's Sharpe (``cost_sharpe``) and buy-and-hold's through the same scaled
    costs (``cost_benchmark_sharpe``; empty in results written before it existed)."""

    fold: int
    seed: int
    test_start: str
    test_end: str
    returns: Mapping[str, np.ndarray]
    metrics: Mapping[str, Mapping[str, float]]
    cost_sharpe: Mapping[float, float]
    model_path: str = ""
    cost_benchmark_sharpe: Mapping[float, float] = field(default_factory=dict)

    @property
    def methods(self) -> list[str]:
        return list(self.metrics)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fold": self.fold,
            "seed": self.seed,
            "test_start": self.test_start,
            "test_end": self.test_end,
            "returns": {
                k: np.asarray(v, dtype=np.float64).tolist() for k, v in self.returns.items()
            },
            "metrics": {k: dict(v) for k, v in self.metrics.items()},
            "cost_sharpe": [[float(m), float(s)] for m, s in self.cost_sharpe.items()],
            "model_path": self.model_path,
            "cost_benchmark_sharpe": [
                [float(m), float(s)] for m, s in self.cost_benchmark_sharpe.items()
            ],
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> FoldResult:
        return cls(
            fold=int(values["fold"]),
            seed=int(values["seed"]),
            test_start=str(values["test_start"]),
            test_end=str(values["test_end"]),
            returns={k: np.asarray(v, dtype=np.float64) for k, v in values["returns"].items()},
            metrics={k: {m: float(x) for m, x in v.items()} for k, v in values["metrics"].items()},
            cost_sharpe={float(m): float(s) for m, s in values["cost_sharpe"]},
            model_path=str(values.get("model_path", "")),
            cost_benchmark_sharpe={
                float(m): float(s) for m, s in values.get("cost_benchmark_sharpe", [])
            },
        )


def fold_split(market: MarketData, fold: Fold) -> SplitConfig:
    """The training split that ends on ``fold.train_end`` and tests from ``fold.test_start``.

    Only a fold with one training range before one test range (walk-forward) can be trained
    this way; the embargo is the bars strictly between the two.
    """
    if len(fold.train_bars) != 1 or len(fold.test_bars) != 1:
        raise ConfigError(
            f"fold {fold.index} has {len(fold.train_bars)} training and {len(fold.test_bars)} "
            "test ranges; evaluate_fold trains walk-forward folds only (folds.scheme: "
            "walk_forward)"
        )
    days = market.dates.astype("datetime64[D]")
    end = int(np.searchsorted(days, np.datetime64(fold.train_end, "D")))
    start = int(np.searchsorted(days, np.datetime64(fold.test_start, "D")))
    if end >= start:
        raise ConfigError(f"fold {fold.index}: its test window does not start after training")
    return SplitConfig(train_end=fold.train_end, embargo_days=start - end - 1)


def train_fold(
    training: TrainingConfig,
    market: MarketData,
    fold: Fold,
    seed: int,
    output_dir: str | Path,
    *,
    logger: logging.Logger | None = None,
    extra_callbacks: Sequence[BaseCallback] = (),
) -> Path:
    """Train on ``market.period(fold.train_start, fold.test_end)`` with the split of
    :func:`fold_split` and ``seed`` into ``output_dir``; the model's path (its test period is
    the fold's test window, checked). ``extra_callbacks`` as for :func:`train`."""
    from ploutos_core.training import train

    window = market.period(fold.train_start, fold.test_end)
    config = training.model_copy(update={"seed": seed, "split": fold_split(window, fold)})
    result = train(
        config, window, output_dir, logger=logger, progress_every=None,
        extra_callbacks=extra_callbacks,
    )
    _check_test_window(fold, (result.manifest.test_period.start, result.manifest.test_period.end))
    return Path(result.model_path)


def _check_test_window(fold: Fold, test_period: tuple[str, str]) -> None:
    """Raise unless a fold model's test period is the fold's test window."""
    if tuple(test_period) != (fold.test_start, fold.test_end):
        raise EvaluationError(
            f"fold {fold.index}: the model's test period {test_period} is not the fold's "
            f"test window ({fold.test_start}, {fold.test_end})"
        )


def backtest_fold(
    model_path: str | Path,
    market: MarketData,
    fold: Fold,
    seed: int,
    output_dir: str | Path,
    *,
    baselines: Sequence[str],
    cost_multipliers: Sequence[float],
) -> FoldResult:
    """The fold's model over its test window (files in ``output_dir``), beside ``baselines``
    on the same bars with the model's environment and costs (looking back through ``market``),
    and re-simulated, with buy-and-hold, with the costs times each multiplier."""
    from ploutos_core.artifacts import load_trained_model
    from ploutos_core.backtest.run import INFERENCE_THREADS, run_backtest, torch_threads

    trained = load_trained_model(model_path)
    _check_test_window(fold, trained.test_period)
    window = market.period(fold.train_start, fold.test_end)
    report = run_backtest(model_path, window, BacktestConfig(top_k=0), output_dir)
    test = window.period(fold.test_start, fold.test_end)
    env_config = trained.env_config
    runs: dict[str, BacktestRun] = {AGENT: report.strategy}
    names = list(dict.fromkeys(["buy_and_hold", *baselines]))
    runs.update(run_baselines(names, market, test, env_config, seed))
    benchmark = per_bar_returns(runs["buy_and_hold"].equity)
    kept = [AGENT, *names]
    cost_sharpe, cost_benchmark_sharpe = {}, {}
    for multiplier in cost_multipliers:
        if multiplier == 1.0:
            run, held = report.strategy, runs["buy_and_hold"]
        else:
            scaled = scaled_costs(env_config, multiplier)
            with torch_threads(INFERENCE_THREADS):
                run = simulate(test, scaled, trained.policy(True))
            held = run_baselines(["buy_and_hold"], market, test, scaled, seed)["buy_and_hold"]
        cost_sharpe[float(multiplier)] = float(run.metrics()["sharpe"])
        cost_benchmark_sharpe[float(multiplier)] = float(held.metrics()["sharpe"])
    return FoldResult(
        fold=fold.index,
        seed=seed,
        test_start=iso_day(test.dates[0]),
        test_end=iso_day(test.dates[-1]),
        returns={name: per_bar_returns(runs[name].equity) for name in kept},
        metrics={name: method_metrics(runs[name], benchmark) for name in kept},
        cost_sharpe=cost_sharpe,
        model_path=str(model_path),
        cost_benchmark_sharpe=cost_benchmark_sharpe,
    )


def evaluate_fold(
    training: TrainingConfig,
    market: MarketData,
    fold: Fold,
    seed: int,
    output_dir: str | Path,
    *,
    baselines: Sequence[str],
    cost_multipliers: Sequence[float],
    logger: logging.Logger | None = None,
) -> FoldResult:
    """Train on the fold with ``seed``, backtest over its test window beside the baselines.

    :func:`train_fold` into ``output_dir/model``, then :func:`backtest_fold` with its files in
    ``output_dir/backtest``.
    """
    output_dir = Path(output_dir)
    model_path = train_fold(training, market, fold, seed, output_dir / "model", logger=logger)
    return backtest_fold(
        model_path,
        market,
        fold,
        seed,
        output_dir / "backtest",
        baselines=baselines,
        cost_multipliers=cost_multipliers,
    )


@dataclass(frozen=True)
class Verdict:
    """The judgement of an agent over folds x seeds; :meth:`to_dict` is ``verdict.json``."""

    n_folds: int
    seeds: list[int]
    n_trials: int
    methods: dict[str, dict[str, dict[str, float]]]
    prob_improvement: dict[str, dict[str, float]]
    best_baseline: str
    excess_over_best: dict[str, float]
    psr: float
    dsr: float
    pbo: float | None
    cost_sensitivity: dict[str, dict[str, Any]]
    promoted: bool
    reasons: list[str]
    gate: dict[str, Any] = field(default_factory=dict)
    data_fingerprint: str = ""
    trial_key: str = ""

    def to_dict(self) -> dict[str, Any]:
        return json_safe(
            {
                "n_folds": self.n_folds,
                "seeds": list(self.seeds),
                "n_trials": self.n_trials,
                **self.methods,
                "prob_improvement": self.prob_improvement,
                "best_baseline": self.best_baseline,
                "excess_sharpe_over_best_baseline": self.excess_over_best,
                "psr": self.psr,
                "dsr": self.dsr,
                "pbo": self.pbo,
                "cost_sensitivity": self.cost_sensitivity,
                "promoted": self.promoted,
                "reasons": list(self.reasons),
                "gate": self.gate,
                "data_fingerprint": self.data_fingerprint,
                "trial_key": self.trial_key,
            }
        )


def _iqm_dict(estimate) -> dict[str, float]:
    return {"iqm": estimate.point, "ci_low": estimate.ci_low, "ci_high": estimate.ci_high}


def _grid(results: Sequence[FoldResult]) -> tuple[list[int], list[int], dict]:
    folds = sorted({r.fold for r in results})
    seeds = sorted({r.seed for r in results})
    cells = {(r.fold, r.seed): r for r in results}
    missing = [(f, s) for f in folds for s in seeds if (f, s) not in cells]
    if not results or missing or len(cells) != len(results):
        raise EvaluationError(
            f"the results must fill the fold x seed grid once each; missing {missing}"
            if missing
            else "no results, or a fold x seed pair given twice"
        )
    return folds, seeds, cells


def agent_returns(results: Sequence[FoldResult]) -> np.ndarray:
    """The agent's out-of-sample series: per bar the mean over seeds, folds in order."""
    folds, seeds, cells = _grid(results)
    parts = []
    for f in folds:
        per_seed = [cells[(f, s)].returns[AGENT] for s in seeds]
        if len({len(r) for r in per_seed}) != 1:
            raise EvaluationError(f"fold {f}: the seeds' return series differ in length")
        parts.append(np.mean(np.stack(per_seed), axis=0))
    return np.concatenate(parts)


def _cost_entry(
    folds: list[int],
    seeds: list[int],
    cells: dict,
    multiplier: float,
    bootstrap: dict[str, Any],
) -> dict[str, Any]:
    """The verdict at one cost multiplier: the agent's IQM Sharpe and interval (``iqm``,
    ``ci_low``, ``ci_high``), buy-and-hold's through the same costs (``buy_and_hold``) and
    ``beats_buy_and_hold`` (agent's IQM above buy-and-hold's); the last two ``None`` when a
    result lacks buy-and-hold's cost runs."""

    def scores(sharpe: Callable[[FoldResult], Mapping[float, float]]) -> np.ndarray:
        return np.array([[sharpe(cells[(f, s)])[multiplier] for s in seeds] for f in folds])

    agent = _iqm_dict(iqm_interval(scores(lambda r: r.cost_sharpe), **bootstrap))
    if not all(multiplier in r.cost_benchmark_sharpe for r in cells.values()):
        return {**agent, "buy_and_hold": None, "beats_buy_and_hold": None}
    held = _iqm_dict(iqm_interval(scores(lambda r: r.cost_benchmark_sharpe), **bootstrap))
    return {**agent, "buy_and_hold": held, "beats_buy_and_hold": agent["iqm"] > held["iqm"]}


def judge(
    results: Sequence[FoldResult],
    evaluation: EvaluationConfig,
    registry: TrialRegistry,
    data_fingerprint: str,
    training: TrainingConfig,
    *,
    output_path: str | Path | None = None,
) -> Verdict:
    """The verdict of fold x seed results against ``evaluation``'s baselines and gate.

    Registers the trial (``training``, its seed ignored) with the agent's out-of-sample series
    in ``registry`` first, so the DSR counts it among the trials on ``data_fingerprint``; PBO
    needs two trials or more (else ``None``, and the gate skips it). Writes ``output_path``
    (``verdict.json``) atomically when given.
    """
    folds, seeds, cells = _grid(results)
    methods = [AGENT, *evaluation.baselines]

    def matrix(method: str, key: str) -> np.ndarray:
        return np.array([[cells[(f, s)].metrics[method][key] for s in seeds] for f in folds])

    sharpe = compare_to_baselines(
        {m: matrix(m, "sharpe") for m in methods}, AGENT, evaluation.bootstrap
    )
    excess = compare_to_baselines(
        {m: matrix(m, "excess_sharpe") for m in methods}, AGENT, evaluation.bootstrap
    )
    returns = agent_returns(results)
    registry.register(data_fingerprint, training, returns)
    n_trials = registry.n_trials(data_fingerprint)
    psr = probabilistic_sharpe_ratio_of(returns)
    dsr = deflated_sharpe_ratio_of(returns, registry.trial_sharpes(data_fingerprint))
    overfitting = None
    if n_trials >= 2:
        overfitting = probability_of_backtest_overfitting(registry.returns_matrix(data_fingerprint))
    values = VerdictValues.from_results(sharpe, dsr, overfitting)
    promoted, reasons = promotion_decision(values, evaluation.gate)
    kwargs = {
        "reps": evaluation.bootstrap.reps,
        "confidence": evaluation.bootstrap.confidence,
        "seed": evaluation.bootstrap.seed,
    }
    cost_sensitivity = {
        f"{float(m):g}": _cost_entry(folds, seeds, cells, float(m), kwargs)
        for m in evaluation.cost_multipliers
    }
    verdict = Verdict(
        n_folds=len(folds),
        seeds=seeds,
        n_trials=n_trials,
        methods={
            m: {
                "sharpe": _iqm_dict(sharpe.iqm[m]),
                "excess_sharpe": _iqm_dict(excess.iqm[m]),
                **{
                    key: float(np.mean(matrix(m, key)))
                    for key in ("total_return", "max_drawdown", "turnover", "costs")
                },
            }
            for m in methods
        },
        prob_improvement={
            name: e.to_dict() for name, e in sharpe.probability_of_improvement.items()
        },
        best_baseline=sharpe.best_baseline,
        excess_over_best=sharpe.excess_iqm.to_dict(),
        psr=psr,
        dsr=dsr,
        pbo=values.pbo,
        cost_sensitivity=cost_sensitivity,
        promoted=promoted,
        reasons=reasons,
        gate=evaluation.gate.model_dump(),
        data_fingerprint=data_fingerprint,
        trial_key=trial_key(training),
    )
    if output_path is not None:
        write_json_atomic(output_path, verdict.to_dict())
    return verdict


def market_fingerprint(market: MarketData, folds: Sequence[Fold] = ()) -> str:
    """A hash of the market's dates, tickers, prices and features and the fold layout: the
    registry's data fingerprint (trials on other data or other folds are not comparable)."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(market.dates).tobytes())
    digest.update("\n".join(market.tickers).encode())
    digest.update("\n".join(market.feature_names).encode())
    for array in (market.open, market.close, market.tradable, market.features):
        digest.update(np.ascontiguousarray(array).tobytes())
    for fold in folds:
        digest.update(repr(fold.to_dict()).encode())
    return digest.hexdigest()[:16]


def fold_name(fold: int, seed: int) -> str:
    return f"fold{fold}_seed{seed}"


def run_evaluation(
    training: TrainingConfig,
    evaluation: EvaluationConfig,
    market: MarketData,
    output_dir: str | Path,
    registry: TrialRegistry,
    *,
    logger: logging.Logger | None = None,
    on_result: Callable[[FoldResult], None] | None = None,
) -> Verdict:
    """Every fold x seed of ``evaluation`` on ``market``, then :func:`judge`.

    Writes under ``output_dir``: ``folds/fold<F>_seed<S>/`` (model and backtest),
    ``folds/fold<F>_seed<S>.json`` (the :class:`FoldResult`) and ``verdict.json``.
    """
    log = logger or logging.getLogger("ploutos")
    output_dir = Path(output_dir)
    folds = make_folds(market.dates, evaluation.folds)
    fingerprint = market_fingerprint(market, folds)
    results = []
    total = len(folds) * len(evaluation.seeds)
    for fold in folds:
        for seed in evaluation.seeds:
            name = fold_name(fold.index, seed)
            log.info(
                "[%d/%d] fold %d (train %s to %s, test %s to %s), seed %d",
                len(results) + 1, total, fold.index, fold.train_start, fold.train_end,
                fold.test_start, fold.test_end, seed,
            )  # fmt: skip
            result = evaluate_fold(
                training,
                market,
                fold,
                seed,
                output_dir / FOLDS_DIR / name,
                baselines=evaluation.baselines,
                cost_multipliers=evaluation.cost_multipliers,
                logger=logger,
            )
            write_json_atomic(output_dir / FOLDS_DIR / f"{name}.json", json_safe(result.to_dict()))
            agent = result.metrics[AGENT]
            log.info(
                "[%d/%d] fold %d seed %d: agent Sharpe %.2f, excess over buy-and-hold %.2f",
                len(results) + 1, total, fold.index, seed, agent["sharpe"], agent["excess_sharpe"],
            )  # fmt: skip
            results.append(result)
            if on_result is not None:
                on_result(result)
    return judge(
        results,
        evaluation,
        registry,
        fingerprint,
        training,
        output_path=output_dir / VERDICT_FILE,
    )
