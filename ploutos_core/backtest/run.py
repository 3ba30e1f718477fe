"""``run_backtest``: a trained model over its manifest's test period, beside the benchmarks, with
the metrics, plots and files a user reads.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from ploutos_core.artifacts import TrainedModel, check_compatible, load_trained_model
from ploutos_core.backtest import plots
from ploutos_core.backtest.benchmarks import buy_and_hold_benchmark, cash_benchmark
from ploutos_core.backtest.input_health import InputHealthMonitor
from ploutos_core.backtest.metrics import (
    json_safe,
)
from ploutos_core.backtest.report import (
    SIDE_LABELS,
    BacktestReport,
    format_metrics_table,
    most_traded,
)
from ploutos_core.backtest.simulate import accounting_error, simulate
from ploutos_core.config import BacktestConfig
from ploutos_core.errors import ManifestError
from ploutos_core.market import MarketData
from ploutos_core.market.dates import iso_day
from ploutos_core.storage import write_bytes_atomic, write_json_atomic, write_parquet_atomic

EQUITY_FILE = "equity.parquet"
TRADES_FILE = "trades.parquet"
POSITIONS_FILE = "positions.parquet"
METRICS_FILE = "metrics.json"
EQUITY_PLOT = "backtest_equity.png"


# One observation per bar: the policy's forward pass is too small to gain from more threads, and
# on a busy 2-core machine their synchronisation made it 3-6 times slower (benchmark).
INFERENCE_THREADS = 1


def _test_market(trained: TrainedModel, market: MarketData) -> MarketData:
    start, end = trained.test_period
    train_end = trained.manifest.train_period.end
    if not train_end < start:
        raise ManifestError(
            f"{trained.manifest_path}: the test period starts {start}, not after the training "
            f"period's end {train_end}; the manifest is inconsistent, retrain the model"
        )
    have = f"{iso_day(market.dates[0])} to {iso_day(market.dates[-1])}" if market.T else "none"
    try:
        period = market.period(start, end)
    except ValueError:
        period = None
    if period is None or iso_day(period.dates[0]) != start or iso_day(period.dates[-1]) != end:
        raise ManifestError(
            f"the model's test period is {start} to {end} ({trained.manifest_path}) but the "
            f"data covers {have}: backtest on data that includes the whole test period"
        )
    return period


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, then restore the previous number."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def trades_plot_name(ticker: str) -> str:
    """File name of a ticker's trades figure."""
    return f"backtest_trades_{ticker}.png"


def run_backtest(
    model_path: str | Path,
    market: MarketData,
    config: BacktestConfig,
    output_dir: str | Path,
) -> BacktestReport:
    """Backtest a trained model over its manifest's test period and write the artifacts.

    Writes into ``output_dir`` (created if missing), each file atomically: ``equity.parquet``
    (per date: ``strategy_*`` and ``buy_and_hold_*`` equity, cash and gross exposure, and
    ``cash_equity``), ``trades.parquet`` (the strategy's fills), ``positions.parquet`` (the
    strategy's shares per ticker and date), ``metrics.json``, ``backtest_equity.png`` and
    ``backtest_trades_<TICKER>.png`` for the ``config.top_k`` most-traded tickers.

    Parameters
    ----------
    model_path:
        ``final_model.zip`` or a checkpoint inside a model directory.
    market:
        Market data including the whole test period, with the model's features and tickers (a
        ``policy: shared`` model takes any tickers: new ones, fewer, another order).
    config:
        ``top_k`` trade figures; ``deterministic`` actions (else sampled, seeded with the
        manifest's seed).
    output_dir:
        Where the files go.

    Raises
    ------
    ManifestError
        When the data does not match the manifest or does not cover the test period.
    """
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    output_dir = Path(output_dir)
    trained = load_trained_model(model_path)
    check_compatible(
        trained.manifest,
        market,
        str(trained.manifest_path),
        "Backtest on the data the model was trained on (same tickers, except for a shared "
        "policy, and the same feature registry), or retrain the model",
    )
    test = _test_market(trained, market)
    env_config = trained.env_config
    if not config.deterministic:
        trained.model.set_random_seed(trained.manifest.seed)
    timings["load"] = time.perf_counter() - clock

    clock = time.perf_counter()
    monitor = InputHealthMonitor(trained.obs_stats, test.F)
    with torch_threads(INFERENCE_THREADS):
        strategy = simulate(test, env_config, monitor.watch(trained.policy(config.deterministic)))
    health = monitor.report(test.tickers, trained.manifest.tickers)
    benchmark = buy_and_hold_benchmark(test, env_config)
    cash = cash_benchmark(test, env_config)
    timings["simulate"] = time.perf_counter() - clock

    clock = time.perf_counter()
    results = {"strategy": strategy.metrics(), "buy_and_hold": benchmark.metrics(),
               "cash": cash.metrics()}
    error = max(accounting_error(strategy, test), accounting_error(benchmark, test))
    table = format_metrics_table(results)
    timings["metrics"] = time.perf_counter() - clock

    clock = time.perf_counter()
    start, end = trained.test_period
    title = f"{trained.model_path.parent.name}/{trained.model_path.name}: test {start} to {end}"
    curves = {
        SIDE_LABELS["strategy"]: strategy.equity,
        SIDE_LABELS["buy_and_hold"] + " (equal weight)": benchmark.equity,
        SIDE_LABELS["cash"]: cash.equity,
    }
    images = {EQUITY_PLOT: plots.equity_png(test.dates, curves, title)}
    thumbnail = plots.equity_thumbnail_png(test.dates, curves, title)
    top = most_traded(strategy.fills, config.top_k)
    ticker_fills = strategy.fills.groupby("ticker", observed=True)
    for ticker in top:
        column = test.tickers.index(ticker)
        images[trades_plot_name(ticker)] = plots.trades_png(
            test.dates,
            test.close[:, column],
            ticker_fills.get_group(ticker),
            ticker,
            f"{ticker}: fills of {trained.model_path.name}, test {start} to {end}",
        )
    timings["plots"] = time.perf_counter() - clock

    clock = time.perf_counter()
    frames = [
        strategy.equity_frame().add_prefix("strategy_"),
        benchmark.equity_frame().add_prefix("buy_and_hold_"),
        cash.equity_frame()[["equity"]].add_prefix("cash_"),
    ]
    paths = {
        "equity": write_parquet_atomic(output_dir / EQUITY_FILE, pd.concat(frames, axis=1)),
        "trades": write_parquet_atomic(output_dir / TRADES_FILE, strategy.fills),
        "positions": write_parquet_atomic(output_dir / POSITIONS_FILE, strategy.positions_frame()),
    }
    written = {name: write_bytes_atomic(output_dir / name, png) for name, png in images.items()}
    paths["equity_plot"] = written[EQUITY_PLOT]
    trade_plots = {ticker: written[trades_plot_name(ticker)] for ticker in top}
    summary = {
        "model": str(trained.model_path),
        "test_period": {"start": start, "end": end, "bars": int(test.T)},
        "train_period": trained.manifest.train_period.model_dump(),
        "deterministic": config.deterministic,
        "accounting_error": error,
        "input_health": health.to_dict(),
        **results,
    }
    paths["metrics"] = write_json_atomic(output_dir / METRICS_FILE, json_safe(summary))
    timings["write"] = time.perf_counter() - clock

    return BacktestReport(
        model_path=trained.model_path,
        test_start=start,
        test_end=end,
        metrics=results,
        paths=paths,
        trade_plots=trade_plots,
        equity_thumbnail=thumbnail,
        table=table,
        accounting_error=error,
        input_health=health,
        timings=timings,
        strategy=strategy,
        benchmark=benchmark,
    )
