"""The paper ledger: the promoted model's portfolio from its promotion on, booked session by
session as bars arrive, by the backtest's own execution rules.

The ledger is a pure function of the model, its start bar and the bars up to the data's last
settled session (:mod:`.sessions`): :func:`run_paper` replays the backtest's
:func:`~ploutos_core.backtest.simulate.simulate_to_last_bar` from the start bar (all cash, first
orders decided on it, filled at the next session's open with the model's costs, equity marked at
closes) and books the settled sessions. Nothing is carried from one session to the next but the
data, so

- recomputing a session gives the same record (restart-safe);
- a bar given twice or rows out of order change nothing (the market holds one bar per ticker and
  day, in date order);
- a ticker without a bar on a session is held and marked at its last close, its orders not
  filled (the backtest's rule for a missing day), and the session's record lists it as
  ``missing``; a late bar that arrives after its session was booked restates the session, which
  :func:`write_session` reports.

Each session's record (:meth:`PaperLedger.session_record`) is a JSON file
``sessions/<date>.json``; :func:`write_session` compares it with the one already written.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ploutos_core import object_store
from ploutos_core.artifacts import check_compatible
from ploutos_core.backtest.benchmarks import buy_and_hold_benchmark
from ploutos_core.backtest.simulate import BacktestRun, simulate_to_last_bar
from ploutos_core.config import PaperConfig
from ploutos_core.env.core import PortfolioCore
from ploutos_core.errors import DataError
from ploutos_core.evaluation.run import method_metrics, per_bar_returns
from ploutos_core.market import MarketData
from ploutos_core.market.dates import as_datetime64, iso_day
from ploutos_core.signals.sessions import Settlement, settlement
from ploutos_core.storage import write_json_atomic

SESSIONS_DIR = "sessions"
Written = Literal["new", "unchanged", "restated"]


@dataclass(frozen=True)
class PaperLedger:
    """The paper portfolio from ``start`` over the data it was given.

    Attributes
    ----------
    market : MarketData
        The bars from the start bar to the data's last bar.
    run : BacktestRun
        The portfolio over ``market`` (bar 0: the start, all cash).
    core : PortfolioCore
        The environment's core standing on the last bar of ``market``.
    benchmark : BacktestRun
        Equal-weight buy-and-hold over the same bars and costs.
    settlement : Settlement
        How many of the bars are booked.
    """

    market: MarketData
    run: BacktestRun
    core: PortfolioCore
    benchmark: BacktestRun
    settlement: Settlement

    @property
    def start(self) -> str:
        return iso_day(self.market.dates[0])

    @property
    def sessions(self) -> list[str]:
        """The booked sessions, in order (the start bar is not a session: nothing fills on it)."""
        return [iso_day(d) for d in self.market.dates[1 : self.settlement.last_settled + 1]]

    def index_of(self, session: str) -> int:
        """The bar of a booked ``session``.

        Raises
        ------
        DataError
            When the data has no bar on ``session`` or the session waits for late bars.
        """
        day = as_datetime64(session)
        index = int(np.searchsorted(self.market.dates, day))
        if index >= self.market.T or self.market.dates[index] != day or index == 0:
            raise DataError(
                f"the data has no session {session} after the paper start {self.start} (its bars "
                f"reach {iso_day(self.market.dates[-1])}); add that day's bars to the data"
            )
        if index > self.settlement.last_settled:
            raise DataError(
                f"session {session} cannot be booked yet: {self.settlement.describe(self.market)}"
            )
        return index

    def frame(self) -> pd.DataFrame:
        """Per booked bar (the start included): ``equity``, ``cash``, ``gross_exposure``,
        ``traded`` (notional filled that session), ``costs``, ``buy_and_hold_equity``."""
        n = self.settlement.last_settled + 1
        dates = pd.DatetimeIndex(self.market.dates[:n], name="date")
        fills = self.run.fills
        by_day = (fills["quantity"] * fills["price"]).groupby(fills["date"]).sum()
        costs = fills["cost"].groupby(fills["date"]).sum()
        return pd.DataFrame(
            {
                "equity": self.run.equity[:n],
                "cash": self.run.cash[:n],
                "gross_exposure": self.run.gross_exposure[:n],
                "traded": by_day.reindex(dates, fill_value=0.0).to_numpy(np.float64),
                "costs": costs.reindex(dates, fill_value=0.0).to_numpy(np.float64),
                "buy_and_hold_equity": self.benchmark.equity[:n],
            },
            index=dates,
        )

    def session_record(self, session: str) -> dict[str, Any]:
        """What session ``session`` booked: the orders decided on the bar before, their fills
        at its open, the positions, cash and equity at its close, and the tickers without a bar
        on it (held at their last close)."""
        i = self.index_of(session)
        market, run = self.market, self.run
        fills = run.fills[run.fills["date"] == market.dates[i]]
        tradable = market.tradable
        missing = ~tradable[i] & tradable[:i].any(axis=0) & tradable[i + 1 :].any(axis=0)
        return {
            "session": session,
            "decided_on": iso_day(market.dates[i - 1]),
            "paper_start": self.start,
            "equity": float(run.equity[i]),
            "cash": float(run.cash[i]),
            "gross_exposure": float(run.gross_exposure[i]),
            "return": float(run.equity[i] / run.equity[i - 1] - 1.0),
            "buy_and_hold_equity": float(self.benchmark.equity[i]),
            "positions": {
                t: float(q) for t, q in zip(market.tickers, run.positions[i], strict=True) if q
            },
            "fills": [
                {
                    "ticker": str(f.ticker),
                    "side": str(f.side),
                    "quantity": float(f.quantity),
                    "price": float(f.price),
                    "cost": float(f.cost),
                }
                for f in fills.itertuples()
            ],
            "missing": [market.tickers[n] for n in np.flatnonzero(missing)],
        }

    def through(self, session: str) -> tuple[BacktestRun, BacktestRun]:
        """The portfolio and buy-and-hold from the start through ``session``."""
        n = self.index_of(session) + 1
        return _head(self.run, n), _head(self.benchmark, n)

    def metrics(self, session: str) -> dict[str, float]:
        """The verdict's metrics (:func:`~ploutos_core.evaluation.run.method_metrics`) of the
        paper period through ``session``, against buy-and-hold over the same sessions."""
        portfolio, benchmark = self.through(session)
        return method_metrics(portfolio, per_bar_returns(benchmark.equity))


def _head(run: BacktestRun, n: int) -> BacktestRun:
    fills = run.fills[run.fills["date"] <= run.dates[n - 1]].reset_index(drop=True)
    return BacktestRun(
        run.dates[:n],
        run.tickers,
        run.equity[:n],
        run.cash[:n],
        run.gross_exposure[:n],
        run.positions[:n],
        fills,
    )


def run_paper(trained: Any, market: MarketData, start: str, config: PaperConfig) -> PaperLedger:
    """The paper ledger of ``trained`` (a :class:`~ploutos_core.artifacts.TrainedModel`) from
    the bar ``start`` (its first orders are decided there) over ``market``.

    Raises
    ------
    ManifestError
        When the market's features or tickers do not fit the model.
    DataError
        When the market has no bar on ``start``.
    """
    from ploutos_core.backtest.run import INFERENCE_THREADS, torch_threads

    check_compatible(
        trained.manifest,
        market,
        str(trained.manifest_path),
        "Paper-trade on data with the model's tickers and feature registry, or retrain",
    )
    day = as_datetime64(start)
    if day not in market.dates:
        covered = f"{iso_day(market.dates[0])} to {iso_day(market.dates[-1])}" if market.T else "-"
        raise DataError(
            f"the paper portfolio starts on the bar of {start} (the data's last bar when the "
            f"model was promoted) but the data ({covered}) has no bar that day; pass data that "
            "includes it"
        )
    period = market.period(start, None)
    with torch_threads(INFERENCE_THREADS):
        run, core = simulate_to_last_bar(period, trained.env_config, trained.policy(True))
    benchmark = buy_and_hold_benchmark(period, trained.env_config)
    return PaperLedger(
        period, run, core, benchmark, settlement(period, config.stopped_after_sessions)
    )


def session_file(session: str) -> str:
    """A session's record, relative to the paper directory: ``sessions/<date>.json``."""
    return f"{SESSIONS_DIR}/{session}.json"


def session_path(directory: str | Path, session: str) -> Path:
    return Path(directory) / session_file(session)


def booked_sessions(paper_location: str | Path) -> set[str]:
    """The sessions that have a record under ``paper_location`` (a path or a URL)."""
    suffix = ".json"
    names = object_store.file_names(object_store.join(paper_location, SESSIONS_DIR))
    return {name[: -len(suffix)] for name in names if name.endswith(suffix)}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return (
            isinstance(a, int | float)
            and isinstance(b, int | float)
            and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def write_session(directory: str | Path, record: dict[str, Any]) -> Written:
    """Write a session's record under ``directory`` and say whether it is new, the same as the
    one already there (a recomputation) or different (the data of a booked session changed:
    a late bar or a corrected one)."""
    path = session_path(directory, record["session"])
    status: Written = "new"
    if path.is_file():
        status = "unchanged" if _same(json.loads(path.read_text()), record) else "restated"
    if status != "unchanged":
        write_json_atomic(path, record)
    return status
