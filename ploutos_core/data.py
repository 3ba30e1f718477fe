"""Loading and validating a user's OHLCV CSV into one long, clean table.

Two layouts are accepted: the long layout (one row per date and ticker, columns in any order and
case, common aliases) and the wide layout that ``yfinance.download([...]).to_csv()`` writes (a
price-field header row, a ticker header row, then a ``Date`` row). Files may be gzip-compressed.

Everything a user can get wrong raises :class:`~ploutos_core.errors.DataError` naming the file,
the column, the ticker, the first offending CSV lines and the fix; nothing raw from pandas or NumPy
escapes. Two harmless defects are repaired with a warning on the ``ploutos.data`` logger and listed
in :attr:`OhlcvLoad.repairs`: exact duplicate rows and rows out of date order.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import re
import warnings
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ploutos_core.errors import DataError
from ploutos_core.features import WARMUP_BARS

logger = logging.getLogger("ploutos.data")

OHLCV_COLUMNS = ("date", "ticker", "open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")

MIN_HISTORY_BARS = WARMUP_BARS + 1
"""A ticker needs at least one bar left after the feature warm-up."""

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

_TZ_SUFFIX = re.compile(
    r"(?i)^(?P<stamp>.*?\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?:Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)$"
)

_COLUMN_FIX = (
    "the long layout needs a header row with date, ticker, open, high, low, close, volume "
    "(any order and case; aliases such as symbol, timestamp, adj close are accepted), "
    "or use the two-header-row wide layout that yfinance.download(...).to_csv() writes"
)


@dataclass(frozen=True)
class OhlcvLoad:
    """The result of :func:`read_ohlcv`.

    Parameters
    ----------
    frame:
        The validated long table: exactly :data:`OHLCV_COLUMNS`, sorted by ticker then date.
    dropped:
        Tickers left out for lack of history, mapped to the reason.
    repairs:
        Human-readable descriptions of the defects that were repaired (each also logged).
    """

    frame: pd.DataFrame
    dropped: dict[str, str] = field(default_factory=dict)
    repairs: list[str] = field(default_factory=list)


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


def content_hash(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of the file's bytes: the data version of the raw CSV."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise _unreadable(Path(path), exc) from None
    return digest.hexdigest()


def load_ohlcv(
    path: str | os.PathLike[str], *, adjust: bool = True, min_history: int = MIN_HISTORY_BARS
) -> pd.DataFrame:
    """Read, validate and normalize an OHLCV CSV; return the long table.

    The same as ``read_ohlcv(path, ...).frame``; see :func:`read_ohlcv` for the parameters.
    """
    return read_ohlcv(path, adjust=adjust, min_history=min_history).frame


def read_ohlcv(
    path: str | os.PathLike[str], *, adjust: bool = True, min_history: int = MIN_HISTORY_BARS
) -> OhlcvLoad:
    """Read, validate and normalize an OHLCV CSV.

    Parameters
    ----------
    path:
        A ``.csv`` or gzip-compressed ``.csv.gz`` file in the long or the yfinance wide layout.
    adjust:
        When the file has an adjusted close, multiply open, high, low and close by
        ``adj_close / close`` and divide volume by it (split and dividend adjustment).
        ``DataConfig.adjust_prices`` switches this off.
    min_history:
        Tickers with fewer rows are dropped (listed in :attr:`OhlcvLoad.dropped`).

    Returns
    -------
    OhlcvLoad
        ``frame`` has exactly :data:`OHLCV_COLUMNS` with dtypes datetime64[ns] (naive dates),
        string and float64, sorted by ticker then date, with a RangeIndex.

    Raises
    ------
    DataError
        For any input that cannot be used as is; the message says which rows and how to fix it.
    """
    path = Path(path)
    source = str(path)
    table = _read_table(path)
    raw = _to_long(table, source)
    repairs: list[str] = []
    parsed, names = _parse(raw, source, adjust=adjust)
    parsed = _order(parsed, raw, names, source, repairs)
    _check_prices(parsed, raw, source)
    frame = _finish(parsed, names, adjust=adjust)
    frame, dropped = _drop_short(frame, source, min_history)
    return OhlcvLoad(frame=frame, dropped=dropped, repairs=repairs)


# -- reading -----------------------------------------------------------------------------------


def _unreadable(path: Path, exc: OSError) -> DataError:
    if isinstance(exc, FileNotFoundError):
        return DataError(
            f"{path}: the file does not exist. "
            "Fix: check the path, or set PLOUTOS_DATA to your CSV."
        )
    if isinstance(exc, IsADirectoryError):
        return DataError(f"{path}: is a directory, not a CSV file. Fix: point at the CSV itself.")
    return DataError(
        f"{path}: cannot read the file ({exc.strerror or exc}). Fix: check it exists "
        "and is readable."
    )


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _unreadable(path, exc) from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(
                f"{path}: the gzip data is corrupt or truncated ({exc}). Fix: re-create the file "
                "with `gzip` or use the uncompressed CSV."
            ) from None
    elif path.suffix.lower() == ".gz":
        raise DataError(
            f"{path}: the name ends in .gz but the content is not gzip-compressed. Fix: rename it "
            "to .csv or compress it with `gzip`."
        )
    if not data.strip():
        raise DataError(
            f"{path}: the file is empty. Fix: write a header row (date, ticker, open, high, low, "
            "close, volume) and one row per date and ticker."
        )
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        encoding = "utf-16"
    else:
        encoding = "utf-8-sig"
        if data[:4] == b"PK\x03\x04" or b"\x00" in data[:8192]:
            raise _binary(path, "it contains binary data (a spreadsheet, archive or image?)")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise _binary(path, f"byte {exc.start} is not valid {exc.encoding} text") from None


def _binary(path: Path, why: str) -> DataError:
    return DataError(
        f"{path}: not a readable CSV text file: {why}. Fix: export the data as a comma-separated "
        "UTF-8 text file (.csv, or .csv.gz)."
    )


def _read_table(path: Path) -> pd.DataFrame:
    """All cells as stripped strings; row ``i`` is line ``i + 1`` of the file."""
    text = _read_text(path)
    try:
        table = pd.read_csv(
            io.StringIO(text),
            header=None,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
        )
    except ValueError as exc:  # pandas' ParserError is a ValueError
        detail = str(exc).replace("Error tokenizing data. C error: ", "").strip()
        quote = re.search(r"EOF inside string starting at row (\d+)", detail)
        if quote:  # pandas counts rows from 0 here
            raise DataError(
                f"{path}: cannot parse the CSV: the double quote on line {int(quote[1]) + 1} is "
                "never closed. Fix: remove the stray quote or close it."
            ) from None
        raise DataError(
            f"{path}: cannot parse the CSV: {detail}. Fix: every line needs the same number of "
            "comma-separated fields as the header; quote values that contain commas."
        ) from None
    table = table.apply(lambda column: column.str.strip())
    occupied = table.ne("").any(axis=1)
    if not occupied.any():
        raise DataError(f"{path}: the file holds only blank lines. Fix: write a header and data.")
    return table.loc[occupied.idxmax() :]


def _normalize_name(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _to_long(table: pd.DataFrame, source: str) -> pd.DataFrame:
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


# -- parsing -----------------------------------------------------------------------------------


def _rows_error(
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


def _parse(raw: pd.DataFrame, source: str, *, adjust: bool) -> tuple[pd.DataFrame, np.ndarray]:
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
        raise _rows_error(
            source, raw, empty, "missing ticker", "fill in the ticker of every row.", ("ticker",)
        )
    bad = [t for t in unique if not TICKER_PATTERN.fullmatch(t)]
    if bad:
        raise _rows_error(
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
        raise _rows_error(
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
        raise _rows_error(source, raw, raw.index[empty], f"missing {what}", f"{fix}.", (name,))
    spelled_nan = text.str.lower().str.lstrip("+-").eq("nan").to_numpy()
    unparsed = np.isnan(values) & ~spelled_nan
    if unparsed.any():
        raise _rows_error(
            source,
            raw,
            raw.index[unparsed],
            f"non-numeric {what}",
            "write plain numbers such as 123.45 (no currency signs or thousands separators).",
            (name,),
        )
    fix = volume_fix if name == "volume" else "replace them with real prices or delete the rows"
    raise _rows_error(
        source, raw, raw.index[~finite], f"non-finite {what} (NaN or infinity)", f"{fix}.", (name,)
    )


# -- repairs and checks ------------------------------------------------------------------------


def _lines(lines: np.ndarray) -> str:
    """Up to MAX_SHOWN line numbers (a wide-layout line holds several tickers' rows)."""
    shown = ", ".join(str(line) for line in lines[:MAX_SHOWN])
    return shown + (", ..." if len(lines) > MAX_SHOWN else "")


def _repair(repairs: list[str], source: str, text: str) -> None:
    repairs.append(text)
    logger.warning("%s: %s", source, text)


def _order(
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
        raise _rows_error(
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


def _check_prices(parsed: pd.DataFrame, raw: pd.DataFrame, source: str) -> None:
    shown = ("open", "high", "low", "close")
    for name in [c for c in (*PRICE_COLUMNS, "adj_close") if c in parsed]:
        bad = parsed[name].to_numpy() <= 0
        if bad.any():
            raise _rows_error(
                source,
                raw,
                parsed.index[bad],
                "zero or negative price",
                "prices must be positive; fix or delete those rows.",
                (name,),
            )
    bad = parsed["volume"].to_numpy() < 0
    if bad.any():
        raise _rows_error(
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
        raise _rows_error(
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
        raise _rows_error(
            source,
            raw,
            parsed.index[bad],
            "close outside [low, high]",
            "the close must lie between low and high; check for mixed adjusted and unadjusted "
            "columns or swapped columns.",
            shown,
        )


def _finish(parsed: pd.DataFrame, names: np.ndarray, *, adjust: bool) -> pd.DataFrame:
    tickers = pd.Categorical.from_codes(parsed["rank"].to_numpy(), categories=names)
    frame = pd.DataFrame(
        {"date": parsed["date"].to_numpy(), "ticker": tickers.astype(pd.StringDtype())}
    )
    factor = None
    if adjust and "adj_close" in parsed:
        factor = parsed["adj_close"].to_numpy() / parsed["close"].to_numpy()
    for name in (*PRICE_COLUMNS, "volume"):
        values = parsed[name].to_numpy(dtype=np.float64)
        if factor is not None:
            values = values / factor if name == "volume" else values * factor
        frame[name] = values
    return frame


def _drop_short(
    frame: pd.DataFrame, source: str, min_history: int
) -> tuple[pd.DataFrame, dict[str, str]]:
    counts = frame.groupby("ticker", sort=True, observed=True).size()
    short = counts[counts < min_history]
    if short.empty:
        return frame, {}
    why = ""
    if min_history == MIN_HISTORY_BARS:
        why = f" (the {WARMUP_BARS}-bar feature warm-up plus one)"
    dropped = {
        str(ticker): f"only {n} rows; needs at least {min_history}{why}"
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
