"""Parsing and checking the raw strings: ticker symbols, dates, numbers and price sanity.

Every problem raises :class:`~ploutos_core.errors.DataError` naming the file, the column, the
ticker, the first offending CSV lines and the fix.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ploutos_core.data.layouts import PRICE_COLUMNS
from ploutos_core.errors import DataError

TICKER_PATTERN = re.compile(r"\A(?!.*\.\.)[A-Za-z0-9^_][A-Za-z0-9.\-^=_]{0,14}\Z")
"""Letters, digits and ``. - ^ = _``, 1 to 15 characters, no ``..``.

Tickers become Dagster partition keys and file names, so this is a security boundary: no path
separators, no whitespace, no ``..``, and no leading ``.``, ``-`` or ``=`` (hidden files,
option-like names, spreadsheet formulas).
"""

TICKER_RULE = (
    "letters, digits and . - ^ = _ only, at most 15 characters, "
    "not starting with '.', '-' or '=', and no '..'"
)

MAX_SHOWN = 5
"""How many offending rows an error message lists."""

CLOSE_TOLERANCE = 1e-6
"""Relative slack for ``low <= close <= high`` (values rounded to a few decimals in the CSV)."""

FIRST_YEAR, LAST_YEAR = 1900, 2199

_TZ_SUFFIX = re.compile(
    r"(?i)^(?P<stamp>.*?\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?:Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)$"
)


def validate_ticker(symbol: str, *, source: str = "ticker symbol") -> str:
    """Return ``symbol`` if it is a safe ticker (see :data:`TICKER_PATTERN`), else raise.

    Parameters
    ----------
    symbol:
        The ticker to check.
    source:
        Where it came from (a file name, a config key), for the error message.
    """
    if not isinstance(symbol, str) or not TICKER_PATTERN.fullmatch(symbol):
        raise DataError(
            f"{source}: unsafe ticker symbol {symbol!r}. Tickers become file names and partition "
            f"keys, so they must use {TICKER_RULE}. Fix: rename the symbol (e.g. BRK.B, ^GSPC, "
            "EURUSD=X are fine)."
        )
    return symbol


def rows_error(
    source: str,
    raw: pd.DataFrame,
    index: Iterable[int] | pd.Index | np.ndarray,
    problem: str,
    fix: str,
    columns: Sequence[str] = (),
) -> DataError:
    """A DataError listing the first offending rows with their CSV line numbers."""
    rows = raw.loc[pd.Index(index)].sort_values("line", kind="stable")
    tickers = list(dict.fromkeys(rows["ticker"].tolist()))
    ticker_text = ", ".join(repr(t) for t in tickers[:10]) + (", ..." if len(tickers) > 10 else "")
    column_text = f"column {', '.join(repr(c) for c in columns)}, " if columns else ""
    lines = []
    key = ("date", "ticker")
    for _, row in rows.head(MAX_SHOWN).iterrows():
        where = f"  line {row['line']}: date={row['date']!r}, ticker={row['ticker']!r}"
        lines.append(where + "".join(f", {c}={row[c]!r}" for c in columns if c not in key))
    more = f"  ... and {len(rows) - MAX_SHOWN} more\n" if len(rows) > MAX_SHOWN else ""
    return DataError(
        f"{source}: {problem} in {len(rows)} row(s) ({column_text}ticker {ticker_text}); "
        f"first rows:\n" + "\n".join(lines) + "\n" + more + f"Fix: {fix}"
    )


def parse_columns(
    raw: pd.DataFrame, source: str, *, adjust: bool
) -> tuple[pd.DataFrame, np.ndarray]:
    """Typed columns (same index as ``raw``) and the sorted ticker names.

    Tickers are held as ``rank``, the position of the ticker in the sorted names, so that sorting
    and grouping work on integers.
    """
    rank, names = _parse_tickers(raw, source)
    parsed = pd.DataFrame(
        {"date": _parse_dates(raw, source), "rank": rank, "line": raw["line"].to_numpy()},
        index=raw.index,
    )
    value_columns = list(PRICE_COLUMNS)
    if adjust and "adj_close" in raw:
        value_columns.append("adj_close")
    for name in [*value_columns, "volume"]:
        parsed[name] = _parse_numbers(raw, name, source)
    return parsed, names


def _parse_tickers(raw: pd.DataFrame, source: str) -> tuple[np.ndarray, np.ndarray]:
    codes, unique = pd.factorize(raw["ticker"])
    unique = np.asarray(unique, dtype=object)
    if "" in unique:
        empty = raw.index[codes == unique.tolist().index("")]
        raise rows_error(
            source, raw, empty, "missing ticker", "fill in the ticker of every row.", ("ticker",)
        )
    bad = [t for t in unique if not TICKER_PATTERN.fullmatch(t)]
    if bad:
        raise rows_error(
            source,
            raw,
            raw.index[raw["ticker"].isin(bad)],
            f"unsafe ticker symbol(s) {', '.join(repr(t) for t in bad[:MAX_SHOWN])}",
            f"tickers become file names and partition keys, so they must use {TICKER_RULE}; "
            "rename them (e.g. BRK.B, ^GSPC, EURUSD=X are fine).",
            ("ticker",),
        )
    folded = pd.Series(unique).str.upper()
    clash = folded.duplicated(keep=False).to_numpy()
    if clash.any():
        names = sorted(unique[clash])
        raise DataError(
            f"{source}: tickers {', '.join(repr(t) for t in names)} (column 'ticker') differ only "
            "in letter case and would collide as file names. Fix: spell each ticker one way."
        )
    order = np.argsort(unique, kind="stable")
    rank_of_code = np.empty(len(unique), dtype=np.int64)
    rank_of_code[order] = np.arange(len(unique))
    return rank_of_code[codes], unique[order]


def _parse_dates(raw: pd.DataFrame, source: str) -> np.ndarray:
    """Naive dates; timezone-aware stamps keep their local calendar date.

    A daily bar stamped ``2020-01-02 00:00+01:00`` is the 2 January session of its exchange;
    converting it to UTC first would move it to 1 January.
    """
    codes, unique = pd.factorize(raw["date"])
    stamps = pd.Index(unique, dtype=object).str.replace(_TZ_SUFFIX, r"\g<stamp>", regex=True)
    parsed = _to_datetime(stamps, "ISO8601")
    if parsed.isna().any():  # one other format for the whole column, e.g. 01/31/2020
        inferred = _to_datetime(stamps, None)
        if inferred.isna().sum() < parsed.isna().sum():
            parsed = inferred
    parsed = parsed.normalize()
    year = parsed.year
    invalid = np.asarray(parsed.isna() | (year < FIRST_YEAR) | (year > LAST_YEAR))
    bad = invalid[codes]
    if bad.any():
        raise rows_error(
            source,
            raw,
            raw.index[bad],
            "unparseable or out-of-range date",
            f"write dates as YYYY-MM-DD (e.g. 2021-03-15) between {FIRST_YEAR} and {LAST_YEAR}; "
            "all rows must use the same date format.",
            ("date",),
        )
    return parsed.to_numpy().astype("datetime64[ns]")[codes]


def _to_datetime(stamps: pd.Index, date_format: str | None) -> pd.DatetimeIndex:
    """Naive timestamps, NaT where a stamp does not parse in ``date_format`` (None: inferred)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "could not infer format" is reported as NaT
            parsed = pd.DatetimeIndex(pd.to_datetime(stamps, format=date_format, errors="coerce"))
    except (ValueError, TypeError, OverflowError):  # e.g. mixed time zone names
        parsed = pd.DatetimeIndex([_parse_one_date(s) for s in stamps])
    return parsed.tz_localize(None) if parsed.tz is not None else parsed


def _parse_one_date(text: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, TypeError, OverflowError):
        return pd.NaT
    if stamp is pd.NaT:
        return pd.NaT
    return stamp.tz_localize(None) if stamp.tz is not None else stamp


def _parse_numbers(raw: pd.DataFrame, name: str, source: str) -> np.ndarray:
    text = raw[name]
    try:  # fast path: Arrow parses a clean column in one pass
        values = pc.cast(pa.array(text.array), pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(values)
    if finite.all():
        return values
    what = "volume" if name == "volume" else "price"
    volume_fix = "set missing volumes to 0 or delete those rows"
    empty = text.eq("").to_numpy()
    if empty.any():
        fix = volume_fix if name == "volume" else "fill in the price or delete those rows"
        raise rows_error(source, raw, raw.index[empty], f"missing {what}", f"{fix}.", (name,))
    spelled_nan = text.str.lower().str.lstrip("+-").eq("nan").to_numpy()
    unparsed = np.isnan(values) & ~spelled_nan
    if unparsed.any():
        raise rows_error(
            source,
            raw,
            raw.index[unparsed],
            f"non-numeric {what}",
            "write plain numbers such as 123.45 (no currency signs or thousands separators).",
            (name,),
        )
    fix = volume_fix if name == "volume" else "replace them with real prices or delete the rows"
    raise rows_error(
        source, raw, raw.index[~finite], f"non-finite {what} (NaN or infinity)", f"{fix}.", (name,)
    )


def check_prices(parsed: pd.DataFrame, raw: pd.DataFrame, source: str) -> None:
    shown = ("open", "high", "low", "close")
    for name in [c for c in (*PRICE_COLUMNS, "adj_close") if c in parsed]:
        bad = parsed[name].to_numpy() <= 0
        if bad.any():
            raise rows_error(
                source,
                raw,
                parsed.index[bad],
                "zero or negative price",
                "prices must be positive; fix or delete those rows.",
                (name,),
            )
    bad = parsed["volume"].to_numpy() < 0
    if bad.any():
        raise rows_error(
            source,
            raw,
            parsed.index[bad],
            "negative volume",
            "volumes count shares traded and cannot be negative; fix them or set them to 0.",
            ("volume",),
        )
    high, low, close = (parsed[c].to_numpy() for c in ("high", "low", "close"))
    bad = high < low
    if bad.any():
        raise rows_error(
            source,
            raw,
            parsed.index[bad],
            "high below low",
            "check the columns are not swapped; high must be >= low.",
            shown,
        )
    slack = CLOSE_TOLERANCE * high
    bad = (close > high + slack) | (close < low - slack)
    if bad.any():
        raise rows_error(
            source,
            raw,
            parsed.index[bad],
            "close outside [low, high]",
            "the close must lie between low and high; check for mixed adjusted and unadjusted "
            "columns or swapped columns.",
            shown,
        )
