"""``ploutos backtest``: evaluate a trained model on its test period from a CSV.

The data goes through the same core code as training (``ploutos_core.data.load_ohlcv``,
``ploutos_core.features.compute_features_many``, ``ploutos_core.market.build_market``), so the
features match the ones the model was trained on. Heavy imports happen inside
:func:`run_backtest_command` to keep ``ploutos --help`` fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ploutos_core.artifacts.model_dir import ModelDir
from ploutos_core.cli.common import DEFAULT_MODEL_DIR, add_data_argument
from ploutos_core.config import BacktestConfig, default_config_path, load_config

DEFAULT_MODEL = ModelDir(DEFAULT_MODEL_DIR).final_model



def add_backtest_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``backtest`` subcommand's options; defaults not given here come from the YAML."""
    parser.add_argument(
        "--model",
        type=str,
        default=DEFAULT_MODEL,
        help="final_model.zip or a checkpoint of a model directory, a path or a URL "
        f"(default: {DEFAULT_MODEL})",
    )
    add_data_argument(
        parser, "OHLCV CSV covering the model's test period (default: data/sample_ohlcv.csv)"
    )
    parser.add_argument(
        "--output",
        type=str,
        default=Path("."),
        help="directory for the plots, equity.parquet, trades.parquet and metrics.json "
        "(a path or a URL; default: the current directory)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=default_config_path("backtest"),
        help="backtest config YAML (default: config/backtest.yaml)",
    )
    parser.add_argument(
        "--top-k",
        type=int,
        help="trade plots for the K most-traded tickers (default: the config's top_k, 5)",
    )
    parser.add_argument(
        "--stochastic",
        action="store_true",
        help="sample actions from the policy instead of taking the most likely one",
    )


def run_backtest_command(args: argparse.Namespace) -> int:
    """Load the CSV, compute features, build the market, backtest and print the table; 0 on
    success."""
    from ploutos_core import object_store
    from ploutos_core.backtest import run_backtest
    from ploutos_core.cli.common import market_from_csv

    overrides: dict[str, object] = {}
    if args.top_k is not None:
        overrides["top_k"] = args.top_k
    if args.stochastic:
        overrides["deterministic"] = False
    config = load_config(BacktestConfig, args.config, overrides)
    market = market_from_csv(args.data)
    with (
        object_store.fetched_model(args.model) as model,
        object_store.working_copy(args.output) as output,
    ):
        report = run_backtest(model, market, config, output.path)
    where = output.location_of
    print(f"backtest of {args.model}, test period {report.test_start} to "
          f"{report.test_end} ({report.n_bars} bars)\n")
    print(report.table)
    print()
    print(f"equity plot: {where(report.paths['equity_plot'])}")
    for ticker, path in report.trade_plots.items():
        print(f"trades {ticker}: {where(path)}")
    for key in ("equity", "trades", "positions", "metrics"):
        print(f"{key + ':':<12} {where(report.paths[key])}")
    return 0
