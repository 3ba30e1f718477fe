"""Judging an agent in the pipeline (group ``evaluation``): the core's walk-forward evaluation as
assets, one partition per fold x seed.

- ``fold_model`` (pool ``gpu``): :func:`ploutos_core.evaluation.run.train_fold` for the
  partition's fold and seed, with the ``trained_model`` run config;
- ``fold_backtest``: :func:`~ploutos_core.evaluation.run.backtest_fold`, the model beside the
  baselines over the fold's test window; writes the fold result JSON;
- ``verdict``: :func:`~ploutos_core.evaluation.run.judge` of every fold x seed result, with the
  trial registry ``<storage>/evaluation/trials.json``; writes ``verdict.json``, ``report.html``
  and the plots (:mod:`ploutos_core.evaluation.report`), the plots also in its metadata;
- ``promotion_gate``: a blocking check on ``verdict``: it passes when the verdict promotes;
- ``production_model``: the latest ``trained_model``, promoted (``promotion.json`` in its
  directory) when the verdict passed the gate and judged that model's config.

The folds and seeds (the partitions) come from ``config/evaluation.yaml`` or the file named by
``$PLOUTOS_EVALUATION_CONFIG``; :func:`evaluation_assets` builds the assets for another
configuration (the tests' tiny one).
"""

import json
import os
from pathlib import Path

import dagster as dg

from ploutos_core import object_store
from ploutos_core.artifacts import Manifest, ModelDir
from ploutos_core.artifacts.model_dir import FINAL_MODEL, MANIFEST
from ploutos_core.config import EvaluationConfig, TrainingConfig, default_config_path, load_config
from ploutos_core.evaluation.folds import Fold, make_folds
from ploutos_core.evaluation.promotion import promote
from ploutos_core.evaluation.run import (
    FOLDS_DIR,
    VERDICT_FILE,
    FoldResult,
    backtest_fold,
    fold_name,
    judge,
    market_fingerprint,
    train_fold,
)
from ploutos_core.evaluation.trials import TrialRegistry, trial_key
from ploutos_core.market import MarketData
from ploutos_core.market.dates import iso_day
from ploutos_core.storage import write_json_atomic
from ploutos_pipeline.assets.features import features
from ploutos_pipeline.assets.model import (
    MODEL_DIR,
    TrainedModelConfig,
    _universe,
    latest_model_location,
    trained_model,
)
from ploutos_pipeline.executors import GPU_QUEUE_TAGS
from ploutos_pipeline.failures import reported_as_failure
from ploutos_pipeline.resources import EVALUATION, PloutosStorage
from ploutos_pipeline.run_config import to_core
from ploutos_pipeline.termination import stops_when_terminated

GROUP = "evaluation"
TRAINING_FILE = "training_config.json"
TRIALS_FILE = "trials.json"


def default_evaluation() -> EvaluationConfig:
    """``$PLOUTOS_EVALUATION_CONFIG`` or ``config/evaluation.yaml``."""
    path = os.environ.get("PLOUTOS_EVALUATION_CONFIG") or default_config_path("evaluation")
    return load_config(EvaluationConfig, path)


def evaluation_dir(storage: PloutosStorage) -> Path:
    """The evaluation directory of a local root."""
    return storage.base / EVALUATION


def fold_partitions(evaluation: EvaluationConfig) -> dg.MultiPartitionsDefinition:
    """One partition per fold index and seed of ``evaluation``."""
    if evaluation.folds.scheme != "walk_forward":
        raise ValueError("the evaluation assets train walk-forward folds only")
    return dg.MultiPartitionsDefinition(
        {
            "fold": dg.StaticPartitionsDefinition(
                [str(i) for i in range(evaluation.folds.n_folds)]
            ),
            "seed": dg.StaticPartitionsDefinition([str(s) for s in evaluation.seeds]),
        }
    )


def _partition(context: dg.AssetExecutionContext) -> tuple[int, int]:
    keys = context.partition_key.keys_by_dimension
    return int(keys["fold"]), int(keys["seed"])


def _fold(market: MarketData, evaluation: EvaluationConfig, index: int) -> Fold:
    return make_folds(market.dates, evaluation.folds)[index]


def evaluation_assets(evaluation: EvaluationConfig) -> list:
    """``fold_model``, ``fold_backtest``, ``verdict``, the ``promotion_gate`` check and
    ``production_model``."""
    partitions = fold_partitions(evaluation)

    @dg.asset(
        deps=[dg.AssetDep(features, partition_mapping=dg.AllPartitionMapping())],
        partitions_def=partitions,
        pool="gpu",
        op_tags=GPU_QUEUE_TAGS,
        group_name=GROUP,
        kinds={"pytorch"},
        description="A PPO agent trained on one walk-forward fold with one seed.",
    )
    def fold_model(
        context: dg.AssetExecutionContext, config: TrainedModelConfig, storage: PloutosStorage
    ) -> dg.MaterializeResult:
        fold_index, seed = _partition(context)
        tickers = _universe(context, storage)
        with reported_as_failure(), stops_when_terminated(context) as stop:
            training = to_core(config, TrainingConfig, "fold_model run config")
            market = storage.load_market(tickers)
            fold = _fold(market, evaluation, fold_index)
            with storage.working_copy(
                EVALUATION, FOLDS_DIR, fold_name(fold_index, seed), upload_on_error=True
            ) as directory:
                model_path = train_fold(
                    training, market, fold, seed, directory.path / "model", logger=context.log,
                    extra_callbacks=[stop],
                )
                write_json_atomic(
                    directory.path / TRAINING_FILE, training.model_dump(mode="json")
                )
        return dg.MaterializeResult(
            metadata={
                MODEL_DIR: dg.MetadataValue.path(directory.location_of(model_path.parent)),
                "train_period": f"{fold.train_start} to {fold.train_end}",
                "test_period": f"{fold.test_start} to {fold.test_end}",
            }
        )

    @dg.asset(
        deps=[fold_model],
        partitions_def=partitions,
        group_name=GROUP,
        kinds={"parquet"},
        description="A fold model over its test window beside the baselines, same costs.",
    )
    def fold_backtest(
        context: dg.AssetExecutionContext, storage: PloutosStorage
    ) -> dg.MaterializeResult:
        fold_index, seed = _partition(context)
        name = fold_name(fold_index, seed)
        model_files = [f"{name}/model/{f}" for f in object_store.model_files(FINAL_MODEL)]
        with (
            reported_as_failure(),
            storage.working_copy(EVALUATION, FOLDS_DIR, fetch=model_files) as folds,
        ):
            model_dir = ModelDir(folds.path / name / "model")
            if not model_dir.final_model.is_file():
                raise dg.Failure(
                    f"no fold model at {folds.location_of(model_dir.final_model)}; "
                    f"materialize fold_model {name}"
                )
            tickers = Manifest.read(model_dir.manifest).tickers
            market = storage.load_market(tickers)
            fold = _fold(market, evaluation, fold_index)
            result = backtest_fold(
                model_dir.final_model,
                market,
                fold,
                seed,
                folds.path / name / "backtest",
                baselines=evaluation.baselines,
                cost_multipliers=evaluation.cost_multipliers,
            )
            path = write_json_atomic(folds.path / f"{name}.json", result.to_dict())
        return dg.MaterializeResult(
            metadata={
                "result": dg.MetadataValue.path(folds.location_of(path)),
                **{f"{m}_sharpe": v["sharpe"] for m, v in result.metrics.items()},
            }
        )

    @dg.asset(
        deps=[fold_backtest],
        group_name=GROUP,
        kinds={"json"},
        description=(
            "IQM Sharpe with confidence intervals over folds x seeds against the baselines, "
            "probability of improvement, PSR, DSR, PBO, cost sensitivity and the gate."
        ),
    )
    def verdict(context: dg.AssetExecutionContext, storage: PloutosStorage) -> dg.MaterializeResult:
        from ploutos_core.backtest.plots import markdown_image
        from ploutos_core.evaluation.report import write_verdict_report

        names = [fold_name(f, s) for f in range(evaluation.folds.n_folds) for s in evaluation.seeds]
        fetch = [
            *(f"{FOLDS_DIR}/{n}.json" for n in names),
            *(f"{FOLDS_DIR}/{n}/{TRAINING_FILE}" for n in names),
            f"{FOLDS_DIR}/{names[0]}/model/{MANIFEST}",
            TRIALS_FILE,
        ]
        with reported_as_failure(), storage.working_copy(EVALUATION, fetch=fetch) as copy:
            root = copy.path
            missing = [n for n in names if not (root / FOLDS_DIR / f"{n}.json").is_file()]
            if missing:
                raise dg.Failure(f"fold results missing: {missing}; materialize fold_backtest")
            results = [
                FoldResult.from_dict(json.loads((root / FOLDS_DIR / f"{n}.json").read_text()))
                for n in names
            ]
            configs = [
                TrainingConfig.model_validate(
                    json.loads((root / FOLDS_DIR / n / TRAINING_FILE).read_text())
                )
                for n in names
            ]
            if len({trial_key(c) for c in configs}) != 1:
                raise dg.Failure("the fold models were trained with different configs; retrain")
            tickers = Manifest.read(
                ModelDir(root / FOLDS_DIR / names[0] / "model").manifest
            ).tickers
            market = storage.load_market(tickers)
            fingerprint = market_fingerprint(market, make_folds(market.dates, evaluation.folds))
            judged = judge(
                results,
                evaluation,
                TrialRegistry(root / TRIALS_FILE),
                fingerprint,
                configs[0],
                output_path=root / VERDICT_FILE,
            )
            report = write_verdict_report(root, judged, results, evaluation.bootstrap)
        context.log.info(f"promoted: {judged.promoted}; " + "; ".join(judged.reasons))
        agent = judged.to_dict()["agent"]["sharpe"]
        return dg.MaterializeResult(
            metadata={
                "verdict": dg.MetadataValue.path(copy.location_of(root / VERDICT_FILE)),
                "report": dg.MetadataValue.path(copy.location_of(report.paths["report"])),
                "promoted": judged.promoted,
                "agent_iqm_sharpe": agent["iqm"],
                "dsr": judged.dsr,
                "n_trials": judged.n_trials,
                **{
                    f"{name}_plot": dg.MetadataValue.md(markdown_image(png, name))
                    for name, png in report.thumbnails.items()
                },
            }
        )

    @dg.asset_check(
        asset=verdict,
        blocking=True,
        description="Passes only when the verdict promotes the agent (every gate criterion).",
    )
    def promotion_gate(storage: PloutosStorage) -> dg.AssetCheckResult:
        with reported_as_failure():
            values = json.loads(object_store.read_bytes(storage.location(EVALUATION, VERDICT_FILE)))
        return dg.AssetCheckResult(
            passed=bool(values["promoted"]),
            metadata={
                "reasons": dg.MetadataValue.md(
                    "\n".join(f"- {r}" for r in values["reasons"]) or "-"
                )
            },
        )

    @dg.asset(
        deps=[verdict, trained_model],
        group_name=GROUP,
        kinds={"pytorch"},
        description=(
            "The latest trained_model, promoted when the verdict on its config passed "
            "promotion_gate: the model signals and the paper ledger use."
        ),
    )
    def production_model(
        context: dg.AssetExecutionContext, storage: PloutosStorage
    ) -> dg.MaterializeResult:
        path = storage.location(EVALUATION, VERDICT_FILE)
        if not object_store.exists(path):
            raise dg.Failure(f"no verdict at {path}; materialize fold_backtest and verdict first")
        model_location = latest_model_location(context.instance, trained_model.key)
        with (
            reported_as_failure(),
            object_store.working_copy(model_location, fetch=[MANIFEST]) as model_dir,
        ):
            bars = storage.read_ohlcv_rows(columns=["date"])
            last_bar = iso_day(bars["date"].max().to_datetime64())
            verdict_values = json.loads(object_store.read_bytes(path))
            promotion = promote(ModelDir(model_dir.path), verdict_values, path, last_bar=last_bar)
        context.log.info(f"promoted {model_location} by {path}; paper trading from {last_bar}")
        return dg.MaterializeResult(
            metadata={
                MODEL_DIR: dg.MetadataValue.path(model_location),
                "verdict": dg.MetadataValue.path(path),
                "trial_key": promotion.trial_key,
                "agent_iqm_sharpe": promotion.agent_iqm_sharpe,
                "dsr": promotion.dsr,
                "last_bar": promotion.last_bar,
            }
        )

    return [fold_model, fold_backtest, verdict, promotion_gate, production_model]


fold_model, fold_backtest, verdict, promotion_gate, production_model = evaluation_assets(
    default_evaluation()
)
