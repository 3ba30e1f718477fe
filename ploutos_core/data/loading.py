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
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ploutos_core.data.layouts import PRICE_COLUMNS, to_long
from ploutos_core.data.repairs import drop_short, sort_rows
from ploutos_core.data.validation import check_prices, parse_columns
from ploutos_core.errors import DataError


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
    path: str | os.PathLike[str], *, adjust: bool = True, min_history: int = 1
) -> pd.DataFrame:
    """Read, validate and normalize an OHLCV CSV; return the long table.

    The same as ``read_ohlcv(path, ...).frame``; see :func:`read_ohlcv` for the parameters.
    """
    return read_ohlcv(path, adjust=adjust, min_history=min_history).frame


def read_ohlcv(
    path: str | os.PathLike[str], *, adjust: bool = True, min_history: int = 1
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
        Tickers with fewer rows are dropped (listed in :attr:`OhlcvLoad.dropped`); the pipeline
        and the command line pass ``ploutos_core.features.MIN_HISTORY_BARS``, the feature warm-up
        plus one bar.

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
    raw = to_long(table, source)
    repairs: list[str] = []
    parsed, names = parse_columns(raw, source, adjust=adjust)
    parsed = sort_rows(parsed, raw, names, source, repairs)
    check_prices(parsed, raw, source)
    frame = _finish(parsed, names, adjust=adjust)
    frame, dropped = drop_short(frame, source, min_history)
    return OhlcvLoad(frame=frame, dropped=dropped, repairs=repairs)


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
