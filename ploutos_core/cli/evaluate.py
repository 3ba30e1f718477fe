"""``ploutos evaluate``: judge a training configuration over walk-forward folds x seeds against the
baselines, with confidence intervals, the Deflated Sharpe Ratio, PBO and the promotion gate.

Files under ``--output DIR``:

- ``verdict.json``: the verdict (:class:`ploutos_core.evaluation.run.Verdict`);
- ``report.html`` and ``verdict_{intervals,fold_equity,profile}.png``: the verdict for a person
  (:mod:`ploutos_core.evaluation.report`);
- ``folds/fold<F>_seed<S>.json``: each fold x seed result (per-bar test returns and metrics of
  the agent and every baseline, the agent's and buy-and-hold's Sharpe per cost multiplier);
- ``folds/fold<F>_seed<S>/model`` and ``.../backtest``: each fold's model and backtest.

The trial registry (every configuration tried on this data, the DSR's number of trials and
PBO's matrix) is ``DIR/../trials.json`` unless ``--trials PATH`` names another file: keep one
registry for all the evaluations on a dataset, so the DSR counts every configuration tried.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ploutos_core.cli.common import add_data_argument, add_training_config_argument, log
from ploutos_core.config import EvaluationConfig, TrainingConfig, default_config_path, load_config
from ploutos_core.errors import ConfigError

DEFAULT_OUTPUT = Path("evaluations") / "latest"


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``evaluate`` subcommand's options; defaults not given here come from the YAML."""
    add_training_config_argument(parser)
    parser.add_argument(
        "--evaluation",
        type=Path,
        default=default_config_path("evaluation"),
        help="evaluation config YAML (default: config/evaluation.yaml)",
    )
    add_data_argument(parser)
    parser.add_argument(
        "--output",
        type=str,
        default=DEFAULT_OUTPUT,
        help="directory for verdict.json and the fold results, a path or a URL "
        f"(default: {DEFAULT_OUTPUT})",
    )
    parser.add_argument(
        "--trials",
        type=str,
        help="trial registry JSON (default: OUTPUT/../trials.json)",
    )
    parser.add_argument(
        "--timesteps", type=int, help="training timesteps per fold x seed (default: the config's)"
    )
    parser.add_argument(
        "--seeds",
        type=int,
        metavar="K",
        help="use K seeds: the first K of the evaluation config's seeds, then the next integers "
        "(default: all of the config's seeds)",
    )
    parser.add_argument(
        "--folds", type=int, metavar="F", help="number of folds (default: the config's n_folds)"
    )
    parser.add_argument("--device", help="auto | cpu | cuda | cuda:N (default: the config's)")


def _seeds(configured: list[int], k: int) -> list[int]:
    seeds = list(configured[:k])
    candidate = max(configured) + 1
    while len(seeds) < k:
        seeds.append(candidate)
        candidate += 1
    return seeds


def run_evaluate_command(args: argparse.Namespace) -> int:
    """Load the configs and data, evaluate every fold x seed, judge; 0 on success (promoted or
    not: the verdict is the result)."""
    from ploutos_core import object_store
    from ploutos_core.cli.common import market_from_csv
    from ploutos_core.evaluation.report import write_verdict_report
    from ploutos_core.evaluation.run import FoldResult, run_evaluation
    from ploutos_core.evaluation.trials import TrialRegistry

    training_overrides = {
        key: value
        for key, value in (("total_timesteps", args.timesteps), ("device", args.device))
        if value is not None
    }
    training = load_config(TrainingConfig, args.config, training_overrides)
    evaluation = load_config(EvaluationConfig, args.evaluation)
    updates: dict[str, object] = {}
    if args.seeds is not None:
        if args.seeds < 1:
            raise ConfigError(f"--seeds must be >= 1, got {args.seeds}")
        updates["seeds"] = _seeds(evaluation.seeds, args.seeds)
    if args.folds is not None:
        updates["folds"] = {"n_folds": args.folds}
    if updates:
        evaluation = load_config(EvaluationConfig, args.evaluation, updates)
    trials = args.trials or object_store.join(object_store.parent(args.output), "trials.json")
    market = market_from_csv(args.data)
    log.info(
        "evaluating %s: %d folds x %d seeds against %s; trials in %s",
        args.config, evaluation.folds.n_folds, len(evaluation.seeds),
        ", ".join(evaluation.baselines), trials,
    )  # fmt: skip
    with (
        object_store.working_file(trials) as registry_path,
        object_store.working_copy(args.output) as output,
    ):
        registry = TrialRegistry(registry_path)
        results: list[FoldResult] = []
        verdict = run_evaluation(
            training, evaluation, market, output.path, registry, logger=log,
            on_result=results.append,
        )  # fmt: skip
        report = write_verdict_report(output.path, verdict, results, evaluation.bootstrap)
    values = verdict.to_dict()
    print(f"verdict:     {object_store.join(args.output, 'verdict.json')}")
    print(f"report:      {object_store.join(args.output, report.paths['report'].name)}")
    print(f"trials:      {trials} ({verdict.n_trials} on this data)")
    agent = values["agent"]["sharpe"]
    print(
        f"agent IQM Sharpe {agent['iqm']:.2f} [{agent['ci_low']:.2f}, {agent['ci_high']:.2f}], "
        f"best baseline {verdict.best_baseline}, DSR {verdict.dsr:.2f}, "
        f"PBO {'n/a' if verdict.pbo is None else f'{verdict.pbo:.2f}'}"
    )
    print(f"promoted:    {'yes' if verdict.promoted else 'no'}")
    for reason in verdict.reasons:
        print(f"  - {reason}")
    return 0
