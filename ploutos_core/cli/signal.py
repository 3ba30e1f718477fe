"""``ploutos signal``: the promoted model's orders for the next session, from a CSV.

The paper portfolio starts on the bar recorded at promotion (``promotion.json``'s ``last_bar``)
and is replayed by the backtest's own simulation up to the CSV's last bar, where the orders are
decided (:mod:`ploutos_core.signals`). A model that was never promoted is refused;
``--allow-unpromoted`` (research only) decides for a fresh, all-cash portfolio on the last bar.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ploutos_core import object_store
from ploutos_core.artifacts.model_dir import ModelDir
from ploutos_core.cli.common import DEFAULT_MODEL_DIR, add_data_argument, log
from ploutos_core.config import PaperConfig, default_config_path, load_config
from ploutos_core.storage import write_bytes_atomic, write_parquet_atomic

LEDGER_CSV = "paper_ledger.csv"
LEDGER_PARQUET = "paper_ledger.parquet"


def add_signal_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``signal`` subcommand's options."""
    parser.add_argument(
        "--model",
        type=str,
        default=str(DEFAULT_MODEL_DIR),
        help=f"a promoted model directory, a path or a URL (default: {DEFAULT_MODEL_DIR})",
    )
    add_data_argument(parser, "OHLCV CSV up to the latest bar (default: data/sample_ohlcv.csv)")
    parser.add_argument(
        "--output",
        type=str,
        default=".",
        help="directory for signals.csv, signals.parquet and paper_ledger.csv/.parquet "
        "(a path or a URL; default: the current directory)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=default_config_path("paper"),
        help="paper trading config YAML (default: config/paper.yaml)",
    )
    parser.add_argument(
        "--allow-unpromoted",
        action="store_true",
        help="research only: decide for a model that was never promoted, as a fresh all-cash "
        "portfolio on the data's last bar",
    )


def _paper_start(model_dir: ModelDir, location: str, allow_unpromoted: bool) -> str | None:
    """The promotion's last bar; None for an unpromoted model when allowed (the data's last)."""
    from ploutos_core.evaluation.promotion import PromotionError, read_promotion

    try:
        return read_promotion(model_dir, shown_as=location).last_bar
    except PromotionError:
        if not allow_unpromoted or not model_dir.manifest.is_file():
            raise
        log.warning("%s was never promoted: orders of a fresh portfolio (research)", location)
        return None


def _model_location(model: str) -> str:
    """The model directory ``--model`` names (a directory, or its ``final_model.zip``)."""
    return object_store.parent(model) if model.rstrip("/").endswith(".zip") else model


def run_signal_command(args: argparse.Namespace) -> int:
    """Decide the next session's orders and write them with the paper ledger; 0 on success."""
    from ploutos_core.artifacts import load_trained_model
    from ploutos_core.artifacts.model_dir import FINAL_MODEL
    from ploutos_core.cli.common import market_from_csv
    from ploutos_core.evaluation.promotion import PROMOTION
    from ploutos_core.market.dates import iso_day
    from ploutos_core.signals import decide_orders, run_paper, signals_markdown, write_signals

    location = _model_location(args.model)
    config = load_config(PaperConfig, args.config)
    market = market_from_csv(args.data)
    files = [*object_store.model_files(FINAL_MODEL), PROMOTION]
    with object_store.working_copy(location, fetch=files, upload=False) as model:
        model_dir = ModelDir(model.path)
        start = _paper_start(model_dir, location, args.allow_unpromoted)
        trained = load_trained_model(model_dir.final_model)
    ledger = run_paper(trained, market, start or iso_day(market.dates[-1]), config)
    orders = decide_orders(trained, ledger)
    frame = ledger.frame()
    with object_store.working_copy(args.output) as output:
        paths = write_signals(orders, output.path)
        paths["ledger_csv"] = write_bytes_atomic(
            output.path / LEDGER_CSV, frame.to_csv().encode()
        )
        paths["ledger_parquet"] = write_parquet_atomic(output.path / LEDGER_PARQUET, frame)
    row = orders.iloc[0]
    print(
        f"orders of {location} decided on {row['bar_date']} for the session of "
        f"{row['fill_session']}; paper portfolio since {ledger.start}: "
        f"{len(ledger.sessions)} sessions, equity {frame['equity'].iloc[-1]:,.2f}\n"
    )
    print(signals_markdown(orders))
    print()
    for key, path in paths.items():
        print(f"{key + ':':<16} {output.location_of(path)}")
    return 0
