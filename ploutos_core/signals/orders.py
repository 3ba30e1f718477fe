"""The next session's orders: what the paper portfolio's model decides on the data's last bar.

The decision is the backtest's: the paper ledger (:func:`~ploutos_core.signals.ledger.run_paper`)
replays the backtest's simulation up to the last bar, and the order is the deterministic policy
on the environment core's observation there, normalized with the model's frozen statistics, as
every bar of a backtest is decided. Nothing here builds an observation or runs a policy loop of
its own.

Per ticker (:data:`SIGNAL_COLUMNS`): the policy's ``action`` (hold/buy/sell) and its probabilities,
the paper position (``shares``, ``weight`` of equity at the last close), the ``target_weight``
after the order and the ``order`` it makes to the position's shares (``buy``/``sell``/``none``: a
sell without a position or a buy without cash or room under ``max_position_weight`` changes
nothing), the bar decided on
and the session it fills in (:func:`~ploutos_core.signals.sessions.next_session`). The target
weight is computed by the environment's order rules at the last close: the fill is at the next
open, whose price is not known yet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ploutos_core.errors import DataError
from ploutos_core.market.dates import iso_day
from ploutos_core.signals.ledger import PaperLedger
from ploutos_core.signals.sessions import next_session
from ploutos_core.storage import write_bytes_atomic, write_parquet_atomic

ACTIONS = ("hold", "buy", "sell")
SIGNAL_COLUMNS = (
    "ticker",
    "order",
    "action",
    "p_hold",
    "p_buy",
    "p_sell",
    "shares",
    "weight",
    "target_weight",
    "tradable",
    "bar_date",
    "fill_session",
)
SIGNALS_CSV = "signals.csv"
SIGNALS_PARQUET = "signals.parquet"


def decide_orders(trained: Any, ledger: PaperLedger) -> pd.DataFrame:
    """The orders of ``trained`` (the ledger's model) for the session after the data's last bar.

    Rows are ordered buys, then sells, then the rest, each by ticker.

    Raises
    ------
    DataError
        When the last bar waits for late bars (the paper position there is not known).
    """
    market, core = ledger.market, ledger.core
    if ledger.settlement.last_settled != market.T - 1:
        raise DataError(
            f"no orders for the session after {iso_day(market.dates[-1])}: "
            + ledger.settlement.describe(market)
        )
    observation = core.observe()
    actions = np.asarray(trained.policy(True)(observation)).reshape(market.N)
    probabilities = trained.probabilities_function()(observation).cpu().numpy()
    probabilities = probabilities.reshape(market.N, len(ACTIONS)).astype(np.float64)
    shares_after, cash_after = core.preview(actions)
    close = market.close[-1].astype(np.float64)
    weight = core.shares[0] * close / core.equity[0]
    value_after = shares_after[0] * close
    target = value_after / (cash_after[0] + value_after.sum())
    change = shares_after[0] - core.shares[0]
    order = np.where(change > 0.0, "buy", np.where(change < 0.0, "sell", "none"))
    bar = iso_day(market.dates[-1])
    frame = pd.DataFrame(
        {
            "ticker": list(market.tickers),
            "order": order,
            "action": np.asarray(ACTIONS)[actions],
            "p_hold": probabilities[:, 0],
            "p_buy": probabilities[:, 1],
            "p_sell": probabilities[:, 2],
            "shares": core.shares[0],
            "weight": weight,
            "target_weight": target,
            "tradable": market.tradable[-1],
            "bar_date": bar,
            "fill_session": next_session(market.dates, market.T - 1),
        }
    )
    rank = frame["order"].map({"buy": 0, "sell": 1, "none": 2})
    frame = frame.assign(_rank=rank).sort_values(["_rank", "ticker"], kind="stable")
    return frame.drop(columns="_rank").reset_index(drop=True)


def write_signals(frame: pd.DataFrame, directory: str | Path) -> dict[str, Path]:
    """``signals.csv`` and ``signals.parquet`` in ``directory``, each written atomically."""
    directory = Path(directory)
    return {
        "csv": write_bytes_atomic(directory / SIGNALS_CSV, frame.to_csv(index=False).encode()),
        "parquet": write_parquet_atomic(directory / SIGNALS_PARQUET, frame),
    }


def signals_markdown(frame: pd.DataFrame, limit: int = 50) -> str:
    """The signals as a markdown table, buys and sells first (``limit`` rows at most)."""
    header = "| ticker | order | action | p(hold/buy/sell) | weight | target |"
    lines = [header, "| --- | --- | --- | --- | ---: | ---: |"]
    for row in frame.head(limit).itertuples():
        lines.append(
            f"| {row.ticker} | {row.order} | {row.action} | {row.p_hold:.2f} / {row.p_buy:.2f} / "
            f"{row.p_sell:.2f} | {row.weight:.1%} | {row.target_weight:.1%} |"
        )
    if len(frame) > limit:
        lines.append(f"| ... {len(frame) - limit} more | | | | | |")
    return "\n".join(lines)
