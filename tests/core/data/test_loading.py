"""ploutos_core.data: both CSV layouts, adjustment, repairs, and one test per kind of bad input."""

from __future__ import annotations

import gzip
import hashlib
import logging
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ploutos_core.data import (
    OHLCV_COLUMNS,
    OhlcvLoad,
    content_hash,
    load_ohlcv,
    read_ohlcv,
    validate_ticker,
)
from ploutos_core.data.sample import make_market
from ploutos_core.data.validation import MAX_SHOWN
from ploutos_core.errors import DataError
from ploutos_core.features import MIN_HISTORY_BARS, WARMUP_BARS

WriteCsv = Callable[..., Path]

HEADER = "date,ticker,open,high,low,close,volume\n"
GOOD = """\
date,ticker,open,high,low,close,volume
2020-01-02,AAA,10,11,9,10.5,1000
2020-01-03,AAA,10.5,12,10,11,1200
2020-01-02,BBB,20,21,19,20.5,500
2020-01-03,BBB,20.5,21,20,21,700
"""


def load(path: Path, *, min_history: int = 1, **kwargs) -> OhlcvLoad:
    return read_ohlcv(path, min_history=min_history, **kwargs)


def edit(line: int, column: str, value: str, text: str = GOOD) -> str:
    """``text`` with the cell of ``column`` on 1-based ``line`` replaced by ``value``."""
    lines = text.splitlines()
    header = lines[0].split(",")
    cells = lines[line - 1].split(",")
    cells[header.index(column)] = value
    lines[line - 1] = ",".join(cells)
    return "\n".join(lines) + "\n"


def assert_error(path: Path, *words: str, **kwargs) -> str:
    """read_ohlcv raises a DataError naming the file, every word, and a fix."""
    with pytest.raises(DataError) as info:
        load(path, **kwargs)
    message = str(info.value)
    for word in (path.name, "Fix:", *words):
        assert word in message, f"{word!r} not in:\n{message}"
    return message


def wide_csv(frame: pd.DataFrame, variant: str) -> str:
    """``frame`` as ``yfinance.download([...]).to_csv()`` writes it."""
    fields = {"open": "Open", "high": "High", "low": "Low", "close": "Close", "volume": "Volume"}
    if "adj_close" in frame:
        fields["adj_close"] = "Adj Close"
    table = frame.set_index(["date", "ticker"])[list(fields)].rename(columns=fields)
    table = table.unstack("ticker").sort_index(axis=1)  # yfinance sorts fields by name
    table.index.name = "Date"
    if variant == "by_ticker":
        table = table.swaplevel(axis=1).sort_index(axis=1)
        table.columns.names = ["Ticker", "Price"]
    elif variant == "named":
        table.columns.names = ["Price", "Ticker"]
    else:
        table.columns.names = [None, None]
    return table.to_csv(date_format="%Y-%m-%d")


# -- accepted layouts --------------------------------------------------------------------------


def test_long_layout_round_trips_exactly(tiny_ohlcv: pd.DataFrame, write_csv: WriteCsv) -> None:
    result = read_ohlcv(write_csv(tiny_ohlcv), min_history=1)
    frame = result.frame
    assert tuple(frame.columns) == OHLCV_COLUMNS
    assert frame["date"].dtype == np.dtype("datetime64[ns]")
    assert frame["ticker"].dtype == pd.StringDtype()
    assert all(frame[c].dtype == np.float64 for c in OHLCV_COLUMNS[2:])
    assert isinstance(frame.index, pd.RangeIndex)
    pd.testing.assert_frame_equal(frame, tiny_ohlcv, check_exact=False, rtol=1e-12)
    assert result.repairs == [] and result.dropped == {}


def test_load_ohlcv_returns_the_frame_of_read_ohlcv(write_csv: WriteCsv) -> None:
    path = write_csv(GOOD)
    pd.testing.assert_frame_equal(load_ohlcv(path, min_history=1), load(path).frame)


ALIASES = {
    "date": ["date", "Date", "DATE", "timestamp", "Datetime", "time"],
    "ticker": ["ticker", "Ticker", "symbol", "SYMBOL"],
    "open": ["open", "Open", "OPEN"],
    "high": ["high", "High"],
    "low": ["low", "Low"],
    "close": ["close", "Close", "CLOSE"],
    "volume": ["volume", "Volume", "vol", "VOL"],
}


@settings(max_examples=25, deadline=None)
@given(
    order=st.permutations(OHLCV_COLUMNS),
    names=st.fixed_dictionaries({k: st.sampled_from(v) for k, v in ALIASES.items()}),
    extra=st.booleans(),
)
def test_any_column_order_case_and_alias(order: list[str], names: dict, extra: bool) -> None:
    expected = make_market(3, 30, seed=1)
    shuffled = expected[list(order)].rename(columns=names)
    if extra:
        shuffled["Dividends"] = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "aliases.csv")
        shuffled.to_csv(path, index=False)
        frame = load_ohlcv(path, min_history=1)
    pd.testing.assert_frame_equal(frame, expected, check_exact=False, rtol=1e-12)


def test_gzip_file_loads_like_the_plain_one(tiny_ohlcv: pd.DataFrame, write_csv: WriteCsv) -> None:
    plain = read_ohlcv(write_csv(tiny_ohlcv), min_history=1).frame
    packed = read_ohlcv(write_csv(tiny_ohlcv, "prices.csv.gz"), min_history=1).frame
    pd.testing.assert_frame_equal(packed, plain)


@pytest.mark.parametrize("variant", ["unnamed", "named", "by_ticker"])
def test_yfinance_wide_layout(variant: str, tiny_ohlcv: pd.DataFrame, write_csv: WriteCsv) -> None:
    text = wide_csv(tiny_ohlcv, variant)
    expected_header = {"unnamed": ",Close,", "named": "Price,Close,", "by_ticker": "Ticker,"}
    assert text.startswith(expected_header[variant])
    frame = read_ohlcv(write_csv(text), min_history=1).frame
    # Late listing, delisting and missing days are empty cells in the wide file: no rows.
    pd.testing.assert_frame_equal(frame, tiny_ohlcv, check_exact=False, rtol=1e-12)


def test_yfinance_wide_layout_with_adj_close_is_adjusted(write_csv: WriteCsv) -> None:
    frame = make_market(2, 20, seed=3)
    frame["adj_close"] = frame["close"] * 0.5
    loaded = load(write_csv(wide_csv(frame, "named"))).frame
    np.testing.assert_allclose(loaded["close"], frame["close"] * 0.5)
    np.testing.assert_allclose(loaded["volume"], frame["volume"] * 2.0)


def test_wide_row_with_some_fields_missing_is_an_error(write_csv: WriteCsv) -> None:
    text = """\
    Price,Close,High,Low,Open,Volume
    Ticker,AAA,AAA,AAA,AAA,AAA
    Date,,,,,
    2020-01-02,10,11,9,10,100
    2020-01-03,,11,9,10,100
    """
    assert_error(write_csv(text), "missing price", "'close'", "'AAA'", "line 5")


def test_wide_header_without_volume_for_a_ticker_is_an_error(write_csv: WriteCsv) -> None:
    text = """\
    Price,Close,High,Low,Open,Volume,Close,High,Low,Open
    Ticker,AAA,AAA,AAA,AAA,AAA,BBB,BBB,BBB,BBB
    Date,,,,,,,,,
    2020-01-02,10,11,9,10,100,10,11,9,10
    """
    assert_error(write_csv(text), "volume", "'BBB'")


def test_adjusted_close_scales_prices_and_volume_inversely(write_csv: WriteCsv) -> None:
    text = """\
    Date,Ticker,Open,High,Low,Close,Adj Close,Volume
    2020-01-02,AAA,98,104,96,100,50,1000
    2020-01-03,AAA,100,110,90,100,100,1000
    """
    path = write_csv(text)
    adjusted = load(path).frame
    np.testing.assert_allclose(adjusted["open"], [49, 100])
    np.testing.assert_allclose(adjusted["high"], [52, 110])
    np.testing.assert_allclose(adjusted["low"], [48, 90])
    np.testing.assert_allclose(adjusted["close"], [50, 100])
    np.testing.assert_allclose(adjusted["volume"], [2000, 1000])
    raw = load(path, adjust=False).frame
    np.testing.assert_allclose(raw["open"], [98, 100])
    np.testing.assert_allclose(raw["volume"], [1000, 1000])


@settings(max_examples=30, deadline=None)
@given(factor=st.floats(0.01, 100.0))
def test_adjustment_preserves_ohlc_order_and_dollar_volume(factor: float) -> None:
    frame = make_market(2, 15, seed=5, late_listing=False, delisting=False)
    frame.insert(6, "adj_close", frame["close"] * factor)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "adj.csv")
        frame.to_csv(path, index=False)
        loaded = load_ohlcv(path, min_history=1)
    assert (loaded["low"] <= loaded["close"]).all() and (loaded["close"] <= loaded["high"]).all()
    np.testing.assert_allclose(loaded["close"], frame["adj_close"], rtol=1e-12)
    np.testing.assert_allclose(
        loaded["close"] * loaded["volume"], frame["close"] * frame["volume"], rtol=1e-9
    )


def test_adj_close_aliases_are_recognized(write_csv: WriteCsv) -> None:
    for name in ("adj_close", "AdjClose", "Adj. Close", "adjusted close"):
        text = f"date,ticker,open,high,low,close,{name},volume\n2020-01-02,A,8,12,8,10,5,1\n"
        frame = load(write_csv(text)).frame
        assert frame["close"].tolist() == [5.0], name


def test_timezone_aware_stamps_become_local_calendar_dates(write_csv: WriteCsv) -> None:
    text = """\
    Date,Ticker,Open,High,Low,Close,Volume
    2020-01-02 00:00:00-05:00,AAA,1,1,1,1,1
    2020-03-10 00:00:00-04:00,AAA,1,1,1,1,1
    2020-03-11T00:00:00Z,AAA,1,1,1,1,1
    2020-01-02 00:00:00+01:00,BBB,1,1,1,1,1
    2020-01-03 09:30:00+09:00,BBB,1,1,1,1,1
    """
    frame = load(write_csv(text)).frame
    expected = ["2020-01-02", "2020-03-10", "2020-03-11", "2020-01-02", "2020-01-03"]
    assert frame["date"].tolist() == [pd.Timestamp(d) for d in expected]
    assert frame["date"].dtype == np.dtype("datetime64[ns]")


def test_other_date_formats_and_blank_lines(write_csv: WriteCsv) -> None:
    text = HEADER + "01/02/2020,A,1,1,1,1,1\n\n01/03/2020,A,1,1,1,1,1\n"
    frame = load(write_csv(text)).frame
    assert frame["date"].tolist() == [pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-03")]


# -- repairs and dropped tickers ---------------------------------------------------------------


def test_exact_duplicates_are_removed_with_a_warning(
    write_csv: WriteCsv, caplog: pytest.LogCaptureFixture
) -> None:
    text = GOOD + "2020-01-03,AAA,10.50,12,10,11.0,1200\n"
    with caplog.at_level(logging.WARNING, logger="ploutos.data"):
        result = load(write_csv(text))
    assert len(result.frame) == 4
    assert len(result.repairs) == 1 and "duplicate" in result.repairs[0]
    assert "(lines 6)" in result.repairs[0]
    assert any("duplicate" in r.getMessage() for r in caplog.records)


def test_unsorted_rows_are_sorted_with_a_warning(
    write_csv: WriteCsv, caplog: pytest.LogCaptureFixture
) -> None:
    lines = GOOD.splitlines()
    text = "\n".join([lines[0], lines[4], lines[2], lines[3], lines[1]]) + "\n"
    with caplog.at_level(logging.WARNING, logger="ploutos.data"):
        result = load(write_csv(text))
    pd.testing.assert_frame_equal(result.frame, load(write_csv(GOOD, "sorted.csv")).frame)
    assert len(result.repairs) == 1
    assert "AAA, BBB" in result.repairs[0] and "lines 4, 5" in result.repairs[0]
    assert any("sorted" in r.getMessage() for r in caplog.records)


def test_rows_grouped_by_date_are_not_a_repair(write_csv: WriteCsv) -> None:
    lines = GOOD.splitlines()
    text = "\n".join([lines[0], lines[1], lines[3], lines[2], lines[4]]) + "\n"
    assert load(write_csv(text)).repairs == []


def test_short_tickers_are_dropped_with_a_warning(
    tiny_ohlcv: pd.DataFrame, write_csv: WriteCsv, caplog: pytest.LogCaptureFixture
) -> None:
    counts = tiny_ohlcv.groupby("ticker").size()
    threshold = int(counts.max())
    with caplog.at_level(logging.WARNING, logger="ploutos.data"):
        result = read_ohlcv(write_csv(tiny_ohlcv), min_history=threshold)
    short = sorted(counts[counts < threshold].index)
    assert sorted(result.dropped) == short
    assert all(f"needs at least {threshold}" in why for why in result.dropped.values())
    assert set(result.frame["ticker"]) == set(counts.index) - set(short)
    assert any(short[0] in r.getMessage() for r in caplog.records)


def test_tickers_shorter_than_the_feature_warmup_are_dropped(write_csv: WriteCsv) -> None:
    frame = make_market(
        2, WARMUP_BARS + 1, seed=2, late_listing=False, delisting=False, missing_days=False
    )
    frame = frame.drop(frame.index[frame["ticker"].eq(frame["ticker"].iloc[0])][-1:])
    result = read_ohlcv(write_csv(frame), min_history=MIN_HISTORY_BARS)
    assert MIN_HISTORY_BARS == WARMUP_BARS + 1
    assert list(result.dropped) == [frame["ticker"].iloc[0]]
    assert f"needs at least {MIN_HISTORY_BARS}" in result.dropped[frame["ticker"].iloc[0]]
    assert result.frame["ticker"].nunique() == 1


def test_reading_data_does_not_import_the_feature_code() -> None:
    """Reading a CSV needs no pandas-ta (the minimum history is passed in)."""
    code = "import sys, ploutos_core.data; sys.exit('pandas_ta' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_all_tickers_too_short_is_an_error(write_csv: WriteCsv) -> None:
    assert_error(write_csv(GOOD), "fewer than 3 rows", "AAA 2", "'ticker'", min_history=3)


def test_content_hash_is_the_sha256_of_the_bytes(write_csv: WriteCsv) -> None:
    path = write_csv(GOOD)
    assert content_hash(path) == hashlib.sha256(GOOD.encode()).hexdigest()
    changed = write_csv(edit(3, "close", "11.5"), "changed.csv")
    assert content_hash(changed) != content_hash(path)
    with pytest.raises(DataError, match="does not exist"):
        content_hash(path.with_name("absent.csv"))


# -- bad input: one test per kind --------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    assert_error(tmp_path / "nowhere.csv", "does not exist", "PLOUTOS_DATA")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    (tmp_path / "dir.csv").mkdir()
    assert_error(tmp_path / "dir.csv", "directory")


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"], ids=["zero-bytes", "whitespace"])
def test_empty_file(content: bytes, write_csv: WriteCsv) -> None:
    assert_error(write_csv(content), "empty")


def test_header_only(write_csv: WriteCsv) -> None:
    assert_error(write_csv("date,ticker,open,high,low,close,volume\n"), "header but no data")


@pytest.mark.parametrize(
    "content",
    [b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", b"PK\x03\x04\x14\x00\x06\x00", b"date,\xff\xfe\xfa\n"],
    ids=["png", "xlsx", "not-utf8"],
)
def test_binary_or_undecodable_content(content: bytes, write_csv: WriteCsv) -> None:
    assert_error(write_csv(content), "not a readable CSV")


def test_gz_name_without_gzip_content(write_csv: WriteCsv) -> None:
    path = write_csv(GOOD)
    assert_error(path.rename(path.with_name("plain.csv.gz")), "not gzip-compressed")


def test_truncated_gzip(write_csv: WriteCsv) -> None:
    path = write_csv(gzip.compress(GOOD.encode())[:30], "cut.bin")
    assert_error(path.rename(path.with_name("cut.csv.gz")), "corrupt or truncated")


def test_utf16_and_bom_files_are_read(write_csv: WriteCsv) -> None:
    expected = load(write_csv(GOOD)).frame
    for name, data in (
        ("bom.csv", b"\xef\xbb\xbf" + GOOD.encode()),
        ("utf16.csv", GOOD.encode("utf-16")),
    ):
        pd.testing.assert_frame_equal(load(write_csv(data, name)).frame, expected)


def test_missing_required_columns(write_csv: WriteCsv) -> None:
    text = "date,ticker,open,close\n2020-01-02,AAA,1,1\n"
    message = assert_error(write_csv(text), "missing required column", "high", "low", "volume")
    assert "'open'" in message  # the columns that were found


def test_semicolon_separated_file_gets_a_hint(write_csv: WriteCsv) -> None:
    assert_error(write_csv(GOOD.replace(",", ";")), "missing required column", "separator")


def test_two_columns_with_the_same_meaning(write_csv: WriteCsv) -> None:
    text = "date,timestamp,ticker,open,high,low,close,volume\n2020-01-02,2020-01-02,A,1,1,1,1,1\n"
    assert_error(write_csv(text), "'date', 'timestamp'", "keep only one")


def test_line_with_too_many_fields(write_csv: WriteCsv) -> None:
    assert_error(write_csv(GOOD + "2020-01-06,AAA,1,1,1,1,1,7\n"), "line 6", "fields")


def test_unclosed_quote(write_csv: WriteCsv) -> None:
    assert_error(write_csv(GOOD + '2020-01-06,"AAA,1,1,1,1,1\n'), "line 6", "quote")


def test_non_numeric_price(write_csv: WriteCsv) -> None:
    assert_error(
        write_csv(edit(4, "close", "$20.5")),
        "non-numeric price",
        "'close'",
        "'BBB'",
        "line 4",
        "'$20.5'",
    )


def test_missing_price(write_csv: WriteCsv) -> None:
    assert_error(write_csv(edit(3, "open", "")), "missing price", "'open'", "'AAA'", "line 3")


@pytest.mark.parametrize("value", ["inf", "-Infinity", "nan", "NaN", "1e999"])
def test_non_finite_price(value: str, write_csv: WriteCsv) -> None:
    assert_error(write_csv(edit(5, "high", value)), "non-finite price", "'high'", "'BBB'", "line 5")


@pytest.mark.parametrize("value", ["0", "-3.5"])
def test_non_positive_price(value: str, write_csv: WriteCsv) -> None:
    text = edit(2, "low", value)
    assert_error(write_csv(text), "zero or negative price", "'low'", "'AAA'", "line 2")


def test_non_positive_adjusted_close(write_csv: WriteCsv) -> None:
    text = "date,ticker,open,high,low,close,adj_close,volume\n2020-01-02,AAA,1,1,1,1,0,1\n"
    assert_error(write_csv(text), "zero or negative price", "'adj_close'", "line 2")
    assert len(load(write_csv(text, "ok.csv"), adjust=False).frame) == 1


def test_negative_volume(write_csv: WriteCsv) -> None:
    assert_error(
        write_csv(edit(3, "volume", "-5")), "negative volume", "'volume'", "'AAA'", "line 3"
    )


@pytest.mark.parametrize("value", ["nan", ""], ids=["nan", "empty"])
def test_nan_or_missing_volume(value: str, write_csv: WriteCsv) -> None:
    message = assert_error(write_csv(edit(5, "volume", value)), "'volume'", "'BBB'", "line 5")
    assert "set missing volumes to 0" in message


def test_high_below_low(write_csv: WriteCsv) -> None:
    text = edit(3, "high", "9", edit(3, "low", "12"))
    assert_error(write_csv(text), "high below low", "'AAA'", "line 3", "high='9'")


def test_close_outside_low_high(write_csv: WriteCsv) -> None:
    assert_error(
        write_csv(edit(4, "close", "21.5")), "close outside [low, high]", "'BBB'", "line 4"
    )


def test_close_within_rounding_tolerance_is_accepted(write_csv: WriteCsv) -> None:
    assert len(load(write_csv(edit(4, "close", "21.0000001"))).frame) == 4


def test_conflicting_duplicate_rows(write_csv: WriteCsv) -> None:
    message = assert_error(
        write_csv(GOOD + "2020-01-02,BBB,20,21,19,20.6,500\n"),
        "conflicting duplicate",
        "'BBB'",
        "line 4",
        "line 6",
        "keep one row per date and ticker",
    )
    assert "intraday" not in message


def test_intraday_rows_get_a_resampling_hint(write_csv: WriteCsv) -> None:
    text = """\
    timestamp,ticker,open,high,low,close,volume
    2020-01-02 09:30,AAA,1,2,1,2,10
    2020-01-02 09:31,AAA,2,3,2,3,10
    """
    assert_error(write_csv(text), "conflicting duplicate", "resample intraday data")


@pytest.mark.parametrize("value", ["2020-13-45", "yesterday", "", "1700-01-01"])
def test_unparseable_dates(value: str, write_csv: WriteCsv) -> None:
    assert_error(write_csv(edit(5, "date", value)), "date", "'BBB'", "line 5", "YYYY-MM-DD")


def test_mixed_date_formats_are_an_error(write_csv: WriteCsv) -> None:
    assert_error(write_csv(edit(5, "date", "01/03/2020")), "unparseable", "line 5")


def test_unsafe_ticker_in_file(write_csv: WriteCsv) -> None:
    message = assert_error(
        write_csv(edit(4, "ticker", "../etc", edit(5, "ticker", "../etc"))),
        "unsafe ticker",
        "'../etc'",
        "'ticker'",
        "line 4",
        "line 5",
    )
    assert "15 characters" in message


def test_missing_ticker(write_csv: WriteCsv) -> None:
    assert_error(write_csv(edit(2, "ticker", "")), "missing ticker", "line 2")


def test_tickers_differing_only_in_case(write_csv: WriteCsv) -> None:
    text = GOOD.replace("BBB", "aaa")
    assert_error(write_csv(text), "'AAA'", "'aaa'", "letter case")


def test_error_lists_at_most_five_rows(write_csv: WriteCsv) -> None:
    rows = "".join(f"2020-02-{day:02d},AAA,1,1,1,x,1\n" for day in range(1, 9))
    message = assert_error(write_csv("date,ticker,open,high,low,close,volume\n" + rows), "8 row")
    assert message.count("  line ") == MAX_SHOWN
    assert "and 3 more" in message


SAFE_ALPHABET = st.sampled_from(
    [
        "2020-01-02",
        "2020-01-03",
        "AAA",
        "../x",
        "1",
        "2.5",
        "-1",
        "0",
        "nan",
        "inf",
        "",
        "abc",
        "Date",
        "Price",
        "Ticker",
        "Close",
        "Open",
        "High",
        "Low",
        "Volume",
        "Adj Close",
        '"',
        "'",
        " ",
        "\t",
        "1e400",
        "2020-01-02T00:00:00+05:00",
        ";",
        "\\",
        "\x00",
        "é",
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    header=st.sampled_from(
        [
            "date,ticker,open,high,low,close,volume\n",
            "Price,Close,High,Low,Open,Volume\nTicker,AAA,AAA,AAA,AAA,AAA\nDate,,,,,\n",
            "",
        ]
    ),
    rows=st.lists(st.lists(SAFE_ALPHABET, min_size=0, max_size=9), max_size=6),
    binary=st.binary(max_size=64),
    use_binary=st.booleans(),
)
def test_any_input_loads_or_raises_data_error(
    header: str, rows: list[list[str]], binary: bytes, use_binary: bool
) -> None:
    data = binary if use_binary else (header + "".join(",".join(r) + "\n" for r in rows)).encode()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "fuzz.csv")
        path.write_bytes(data)
        try:
            result = read_ohlcv(path, min_history=1)
        except DataError as exc:
            assert "fuzz.csv" in str(exc) and "Fix:" in str(exc)
            return
    frame = result.frame
    assert tuple(frame.columns) == OHLCV_COLUMNS and len(frame) > 0
    assert (frame[["open", "high", "low", "close"]] > 0).all().all()


# -- ticker safety -----------------------------------------------------------------------------

GOOD_TICKERS = [
    "AAPL",
    "BRK.B",
    "BRK-B",
    "^GSPC",
    "EURUSD=X",
    "ES=F",
    "7203.T",
    "RDS_A",
    "A",
    "ABCDEFGHIJKLMNO",
]
BAD_TICKERS = [
    "",
    "../etc",
    "A/B",
    "A\\B",
    "a b",
    "ABCDEFGHIJKLMNOP",
    ".",
    "..",
    "A..B",
    ".hidden",
    "-rf",
    "=cmd",
    "AAPL\n",
    "C:",
    "tab\tx",
    "€URO",
    "A;B",
    "$AAPL",
    "A*",
]


@pytest.mark.parametrize("symbol", GOOD_TICKERS)
def test_safe_tickers_are_accepted(symbol: str) -> None:
    assert validate_ticker(symbol) == symbol


@pytest.mark.parametrize("symbol", BAD_TICKERS)
def test_unsafe_tickers_are_rejected(symbol: str) -> None:
    with pytest.raises(DataError, match="unsafe ticker") as info:
        validate_ticker(symbol, source="config.yaml")
    assert "config.yaml" in str(info.value) and "Fix:" in str(info.value)


@given(st.text(max_size=20))
def test_every_accepted_ticker_is_one_plain_file_name(symbol: str) -> None:
    try:
        validate_ticker(symbol)
    except DataError:
        return
    assert 1 <= len(symbol) <= 15
    assert Path(symbol).name == symbol and len(Path(symbol).parts) == 1
    assert not symbol.startswith((".", "-")) and ".." not in symbol
    assert symbol.isascii() and symbol.isprintable() and " " not in symbol
