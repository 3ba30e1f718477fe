"""The harmless defects that are repaired with a warning (exact duplicate rows, rows out of date
order) and the tickers dropped for too little history.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ploutos_core.data.validation import MAX_SHOWN, rows_error
from ploutos_core.errors import DataError

logger = logging.getLogger("ploutos.data")

def _lines(lines: np.ndarray) -> str:
    """Up to MAX_SHOWN line numbers (a wide-layout line holds several tickers' rows)."""
    shown = ", ".join(str(line) for line in lines[:MAX_SHOWN])
    return shown + (", ..." if len(lines) > MAX_SHOWN else "")


def _repair(repairs: list[str], source: str, text: str) -> None:
    repairs.append(text)
    logger.warning("%s: %s", source, text)


def sort_rows(
    parsed: pd.DataFrame, raw: pd.DataFrame, names: np.ndarray, source: str, repairs: list[str]
) -> pd.DataFrame:
    """Sort by ticker then date, repairing exact duplicates; conflicting duplicates raise."""
    rank = parsed["rank"].to_numpy()
    dates = parsed["date"].to_numpy()
    in_file = np.argsort(rank, kind="stable")  # rows come in line order
    backwards = (rank[in_file][1:] == rank[in_file][:-1]) & (
        dates[in_file][1:] < dates[in_file][:-1]
    )
    if backwards.any():
        rows = in_file[1:][backwards]
        tickers = ", ".join(dict.fromkeys(names[rank[rows]].tolist()))
        _repair(
            repairs,
            source,
            f"sorted rows whose dates went backwards for ticker(s) {tickers} "
            f"(lines {_lines(np.unique(parsed['line'].to_numpy()[rows]))})",
        )
    parsed = parsed.iloc[np.lexsort((parsed["line"].to_numpy(), dates, rank))]
    same_key = _same_key_as_previous(parsed)
    if not same_key.any():
        return parsed
    values = parsed.drop(columns=["date", "rank", "line"]).to_numpy(dtype=np.float64)
    exact = same_key & np.r_[False, (values[1:] == values[:-1]).all(axis=1)]
    if exact.any():
        _repair(
            repairs,
            source,
            f"removed {int(exact.sum())} exact duplicate row(s) "
            f"(lines {_lines(np.unique(parsed['line'].to_numpy()[exact]))})",
        )
        parsed = parsed.loc[~exact]
        same_key = _same_key_as_previous(parsed)
    if same_key.any():
        clash = same_key | np.r_[same_key[1:], False]
        index = parsed.index[clash]
        stamps = raw.loc[index, "date"]
        keys = [parsed.loc[index, "rank"], parsed.loc[index, "date"]]
        intraday = bool(stamps.groupby(keys).nunique().gt(1).any())
        hint = (
            " Several timestamps fall on the same day: this loader takes daily bars, so resample "
            "intraday data to daily first."
            if intraday
            else ""
        )
        raise rows_error(
            source,
            raw,
            index,
            "conflicting duplicate (date, ticker) rows with different values",
            f"keep one row per date and ticker.{hint}",
            ("open", "high", "low", "close", "volume"),
        )
    return parsed


def _same_key_as_previous(parsed: pd.DataFrame) -> np.ndarray:
    rank = parsed["rank"].to_numpy()
    dates = parsed["date"].to_numpy()
    return np.r_[False, (rank[1:] == rank[:-1]) & (dates[1:] == dates[:-1])]


def drop_short(
    frame: pd.DataFrame, source: str, min_history: int
) -> tuple[pd.DataFrame, dict[str, str]]:
    counts = frame.groupby("ticker", sort=True, observed=True).size()
    short = counts[counts < min_history]
    if short.empty:
        return frame, {}
    dropped = {
        str(ticker): f"only {n} rows; needs at least {min_history}"
        for ticker, n in short.items()
    }
    if len(short) == len(counts):
        raise DataError(
            f"{source}: every ticker has fewer than {min_history} rows (column 'ticker': "
            + ", ".join(f"{t} {n}" for t, n in list(short.items())[:10])
            + f"). Fix: provide at least {min_history} daily bars for at least one ticker."
        )
    logger.warning(
        "%s: dropped %d ticker(s) with too little history: %s",
        source,
        len(dropped),
        "; ".join(f"{t}: {why}" for t, why in dropped.items()),
    )
    kept = frame.loc[~frame["ticker"].isin(list(dropped))].reset_index(drop=True)
    return kept, dropped
