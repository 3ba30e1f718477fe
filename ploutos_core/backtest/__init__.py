"""Out-of-sample evaluation: run a policy as one continuous portfolio, benchmark it, report it.

A backtest answers "would this model have made money, after costs, on data it never saw,
compared with simply holding the universe?":

- :mod:`.simulate`: :func:`simulate` steps the environment's core (the very execution and cost
  model of training) with any policy over a market period and records every bar and fill
- :mod:`.benchmarks`: buy-and-hold and cash over the same bars
- :mod:`.rules`: rule-based policies for :func:`simulate` (the momentum rule)
- :mod:`.metrics`: return metrics and trade statistics
- :mod:`.report`: :class:`BacktestReport` and the metrics table
- :mod:`.plots`: the equity and trade figures
- :mod:`.run`: :func:`run_backtest`, a trained model over its test period, with its files
"""

from typing import TYPE_CHECKING

from ploutos_core.backtest.benchmarks import buy_and_hold_benchmark, cash_benchmark
from ploutos_core.backtest.metrics import metrics, trade_stats
from ploutos_core.backtest.report import BacktestReport, format_metrics_table
from ploutos_core.backtest.rules import momentum_actions, momentum_rule
from ploutos_core.backtest.simulate import BacktestRun, accounting_error, simulate

if TYPE_CHECKING:
    from ploutos_core.backtest.run import run_backtest


def __getattr__(name: str) -> object:
    # run_backtest loads models (torch) and draws figures (matplotlib): imported on first use.
    if name == "run_backtest":
        from ploutos_core.backtest.run import run_backtest

        return run_backtest
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BacktestReport",
    "BacktestRun",
    "accounting_error",
    "buy_and_hold_benchmark",
    "cash_benchmark",
    "format_metrics_table",
    "metrics",
    "momentum_actions",
    "momentum_rule",
    "run_backtest",
    "simulate",
    "trade_stats",
]
