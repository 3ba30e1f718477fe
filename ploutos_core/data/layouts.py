"""The two CSV layouts read: long (one row per date and ticker, any column order and case, common
aliases) and the wide layout ``yfinance.download([...]).to_csv()`` writes. Both become one raw long
table of strings with the CSV line number of every row.
"""

from __future__ import annotations

import re

import pandas as pd

from ploutos_core.errors import DataError

OHLCV_COLUMNS = ("date", "ticker", "open", "high", "low", "close", "volume")

PRICE_COLUMNS = ("open", "high", "low", "close")

_ALIASES = {
    "date": ("date", "datetime", "timestamp", "time", "day", "tradedate", "tradingday"),
    "ticker": ("ticker", "symbol", "tickersymbol", "sym"),
    "open": ("open", "openprice"),
    "high": ("high", "highprice"),
    "low": ("low", "lowprice"),
    "close": ("close", "closeprice", "closingprice", "closelast"),
    "adj_close": ("adjclose", "adjustedclose", "adjcloseprice", "adjustedcloseprice"),
    "volume": ("volume", "vol", "tradevolume"),
}

_CANONICAL = {alias: name for name, aliases in _ALIASES.items() for alias in aliases}

_FIELDS = ("open", "high", "low", "close", "adj_close", "volume")

_COLUMN_FIX = (
    "the long layout needs a header row with date, ticker, open, high, low, close, volume "
    "(any order and case; aliases such as symbol, timestamp, adj close are accepted), "
    "or use the two-header-row wide layout that yfinance.download(...).to_csv() writes"
)


def _normalize_name(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def to_long(table: pd.DataFrame, source: str) -> pd.DataFrame:
    """The raw long table of strings with a ``line`` column; layout detected from the header."""
    wide = _wide_header(table)
    raw = _wide_to_long(table, wide, source) if wide else _long_to_raw(table, source)
    raw = raw.reset_index(drop=True)
    if raw.empty:
        raise DataError(
            f"{source}: the file has a header but no data rows. Fix: add one row per date and "
            "ticker below the header."
        )
    return raw


def _long_to_raw(table: pd.DataFrame, source: str) -> pd.DataFrame:
    header = [str(cell) for cell in table.iloc[0]]
    found: dict[str, list[int]] = {}
    for position, name in enumerate(header):
        canonical = _CANONICAL.get(_normalize_name(name))
        if canonical:
            found.setdefault(canonical, []).append(position)
    for canonical, positions in found.items():
        if len(positions) > 1:
            names = ", ".join(repr(header[p]) for p in positions)
            raise DataError(
                f"{source}: columns {names} all mean {canonical!r}. Fix: keep only one of them."
            )
    missing = [name for name in OHLCV_COLUMNS if name not in found]
    if missing:
        shown = ", ".join(repr(name) for name in header if name) or "(none)"
        hint = ""
        if len(header) == 1 and any(sep in header[0] for sep in ";\t|"):
            hint = " The header seems to use another separator than ','; save it comma-separated."
        raise DataError(
            f"{source}: missing required column(s) {', '.join(missing)} "
            f"(line {table.index[0] + 1} has {shown})."
            f"{hint} Fix: {_COLUMN_FIX}."
        )
    body = table.iloc[1:]
    raw = pd.DataFrame({name: body.iloc[:, found[name][0]] for name in found})
    raw = raw.loc[raw.ne("").any(axis=1)]
    raw["line"] = raw.index.to_numpy() + 1
    return raw


def _wide_header(table: pd.DataFrame) -> tuple[int, int] | None:
    """``(field_row, ticker_row)`` positions if the table has the yfinance wide header."""
    if len(table) < 3 or table.shape[1] < 2:
        return None
    rows = [table.iloc[i].tolist() for i in range(3)]
    date_row = rows[2]
    if _CANONICAL.get(_normalize_name(date_row[0])) != "date" or any(date_row[1:]):
        return None
    for field_row, ticker_row in ((0, 1), (1, 0)):
        fields = {_CANONICAL.get(_normalize_name(cell)) for cell in rows[field_row][1:]}
        if fields & set(PRICE_COLUMNS) and all(rows[ticker_row][1:]):
            return field_row, ticker_row
    return None


def _wide_to_long(table: pd.DataFrame, wide: tuple[int, int], source: str) -> pd.DataFrame:
    field_row, ticker_row = wide
    fields = [_CANONICAL.get(_normalize_name(cell)) for cell in table.iloc[field_row].tolist()]
    tickers = table.iloc[ticker_row].tolist()
    body = table.iloc[3:]
    body = body.loc[body.ne("").any(axis=1)]
    columns: dict[str, dict[str, int]] = {}
    for position in range(1, table.shape[1]):
        name, ticker = fields[position], tickers[position]
        if name not in _FIELDS:
            continue
        by_field = columns.setdefault(ticker, {})
        if name in by_field:
            raise DataError(
                f"{source}: the wide header has two {name!r} columns for ticker {ticker!r} "
                f"(columns {by_field[name] + 1} and {position + 1}). Fix: keep only one."
            )
        by_field[name] = position
    pieces = []
    for ticker, by_field in columns.items():
        missing = [name for name in OHLCV_COLUMNS[2:] if name not in by_field]
        if missing:
            raise DataError(
                f"{source}: the wide header has no {', '.join(missing)} column for ticker "
                f"{ticker!r}. Fix: download all of Open, High, Low, Close, Volume for every ticker."
            )
        piece = pd.DataFrame({name: body.iloc[:, pos] for name, pos in by_field.items()})
        # yfinance leaves a ticker's cells empty on dates it did not trade (before listing).
        price_cols = [name for name in by_field if name != "volume"]
        not_listed = piece[price_cols].eq("").all(axis=1) & piece["volume"].isin(["", "0", "0.0"])
        piece = piece.loc[~not_listed]
        piece.insert(0, "ticker", ticker)
        piece.insert(0, "date", body.iloc[:, 0].loc[piece.index])
        piece["line"] = piece.index.to_numpy() + 1
        pieces.append(piece)
    if not pieces:
        raise DataError(f"{source}: the wide header names no price columns. Fix: {_COLUMN_FIX}.")
    return pd.concat(pieces, ignore_index=True)
