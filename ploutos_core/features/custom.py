"""Our own indicator functions: for what pandas-ta lacks, gets wrong, or computes twice.

Each one takes the OHLCV series it needs under pandas-ta's argument names (``open_``, ``high``,
``low``, ``close``, ``volume``) plus keyword parameters, and returns a Series (or a DataFrame with
named columns), so the registry calls them exactly like pandas-ta functions. Most are thin
scale-free normalizations of a pandas-ta indicator. Some replace one:

- :func:`cci`: pandas-ta 0.4.71b0's ``cci`` computes ``tp - sma / (c * mad)`` (a missing pair of
  parentheses), which is neither the CCI nor scale-free; its rolling MAD is also a Python-level
  ``rolling.apply`` (about 18 ms per 2,520 bars).
- :func:`aroon`: same definition and column names as ``ta.aroon``, but vectorized; pandas-ta's
  ``rolling.apply`` takes about 11 ms per 2,520 bars, a third of the per-ticker budget.
- :func:`adx`, :func:`uo`: identical to pandas-ta's, without its Python-level row operations.
- :func:`atr`, :func:`macd`, :func:`stochrsi`, :func:`kc` and the A/D oscillator in
  :func:`adosc_volume`: identical to pandas-ta's and composed of the same pandas-ta calls, but
  they take the true range, the EMAs, the RSI and the A/D line that other features also read
  from the per-ticker memo, where pandas-ta's versions compute them again (together about 3 ms of
  the 32 ms per 2,520-bar ticker).
- :func:`body_ratio`: ``ta.bop`` gives a flat bar a body ratio of 1 (its epsilon trick).
- :func:`parkinson_vol`, :func:`upper_wick`, :func:`lower_wick`, :func:`gap`, :func:`engulfing`:
  pandas-ta has no such indicator (its candle patterns other than doji and inside need TA-Lib).

Every division goes through :func:`safe_divide` (0 where the denominator is exactly 0). Calls that
other features also make go through :func:`~ploutos_core.features.memo.shared`, so they are
computed once per ticker.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandas_ta as ta
from numpy.lib.stride_tricks import sliding_window_view
from pandas_ta.utils import non_zero_range

from ploutos_core.features.memo import shared

TRADING_DAYS_PER_YEAR = 252


def safe_divide(
    numerator: np.ndarray | pd.Series, denominator: np.ndarray | pd.Series
) -> np.ndarray:
    """``numerator / denominator``, 0 where the denominator is exactly 0; NaN stays NaN."""
    num = np.asarray(numerator, dtype=np.float64)
    den = np.asarray(denominator, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _series(values: np.ndarray, like: pd.Series, name: str) -> pd.Series:
    return pd.Series(values, index=like.index, name=name)


def _window_start_nan(values: np.ndarray, length: int, n: int) -> np.ndarray:
    """Put NaN before a reduction over ``sliding_window_view`` windows (``n - length + 1``)."""
    out = np.full(n, np.nan)
    out[length - 1 :] = values
    return out


def cci(
    high: pd.Series, low: pd.Series, close: pd.Series, length: int = 20, c: float = 0.015
) -> pd.Series:
    """Commodity Channel Index: ``(tp - SMA(tp)) / (c * MAD(tp))`` with ``tp = ta.hlc3``.

    MAD is the mean absolute deviation from the window mean, as pandas-ta's ``mad`` defines it.
    """
    tp = ta.hlc3(high, low, close, talib=False)
    mean = ta.sma(tp, length=length, talib=False).to_numpy()
    windows = sliding_window_view(tp.to_numpy(), length)
    mad = np.abs(windows - windows.mean(axis=1, keepdims=True)).mean(axis=1)
    mad = _window_start_nan(mad, length, len(tp))
    return _series(safe_divide(tp.to_numpy() - mean, c * mad), close, f"CCI_{length}")


def aroon(high: pd.Series, low: pd.Series, length: int = 25, scalar: float = 100.0) -> pd.DataFrame:
    """Aroon up, down and oscillator, identical to ``ta.aroon(..., talib=False)``.

    Bars since the highest high (lowest low) in the last ``length + 1`` bars, the most recent one
    on ties, mapped to ``scalar * (1 - bars / length)``.
    """
    n = len(high)
    win_high = sliding_window_view(high.to_numpy(), length + 1)[:, ::-1]
    win_low = sliding_window_view(low.to_numpy(), length + 1)[:, ::-1]
    since_high = np.full(n, np.nan)
    since_low = np.full(n, np.nan)
    since_high[length:] = win_high.argmax(axis=1)
    since_low[length:] = win_low.argmin(axis=1)
    up = scalar * (1 - since_high / length)
    down = scalar * (1 - since_low / length)
    return pd.DataFrame(
        {f"AROOND_{length}": down, f"AROONU_{length}": up, f"AROONOSC_{length}": up - down},
        index=high.index,
    )


def atr(
    high: pd.Series, low: pd.Series, close: pd.Series, length: int = 14, prenan: bool = False
) -> pd.Series:
    """Average True Range, identical to ``ta.atr(..., talib=False)``: Wilder's ``ta.rma`` of
    ``ta.true_range``, started from the mean of the first ``length`` true ranges (pandas-ta's
    ``presma``). ``prenan`` leaves the first bar's true range undefined, as ``ta.adx`` asks."""
    true_range = shared(ta.true_range, high, low, close, talib=False).copy()
    if prenan:
        true_range.iloc[:1] = np.nan
    start = true_range.iloc[:length].mean()
    true_range.iloc[: length - 1] = np.nan
    true_range.iloc[length - 1] = start
    return _series(ta.rma(true_range, length=length).to_numpy(), close, f"ATRr_{length}")


def adx(
    high: pd.Series, low: pd.Series, close: pd.Series, length: int = 14, scalar: float = 100.0
) -> pd.DataFrame:
    """ADX, +DI and -DI, identical to ``ta.adx(..., talib=False)`` and built from :func:`atr`
    and pandas-ta's ``rma``.

    ``ta.adx`` zeroes near-zero directional moves with a Python-level ``Series.apply`` (about
    2 ms of its 3.5 ms per 2,520 bars); this does the same with ``np.where``.
    """
    average_range = atr(high, low, close, length=length, prenan=True)
    h, lo = high.to_numpy(), low.to_numpy()
    up = h - np.roll(h, 1)
    down = np.roll(lo, 1) - lo
    up[0] = down[0] = np.nan
    plus = np.where((up > down) & (up > 0), up, 0.0)
    minus = np.where((down > up) & (down > 0), down, 0.0)
    plus = np.where(np.abs(plus) < np.finfo(float).eps, 0.0, plus)
    minus = np.where(np.abs(minus) < np.finfo(float).eps, 0.0, minus)
    plus[0] = minus[0] = np.nan
    k = scalar / average_range.to_numpy()
    dmp = k * ta.rma(pd.Series(plus), length=length).to_numpy()
    dmn = k * ta.rma(pd.Series(minus), length=length).to_numpy()
    dx = scalar * np.abs(dmp - dmn) / (dmp + dmn)
    adx_ = ta.rma(pd.Series(dx), length=length).to_numpy()
    return pd.DataFrame(
        {f"ADX_{length}": adx_, f"DMP_{length}": dmp, f"DMN_{length}": dmn}, index=close.index
    )


def uo(
    high: pd.Series,
    low: pd.Series,
    close: pd.Series,
    fast: int = 7,
    medium: int = 14,
    slow: int = 28,
    fast_w: float = 4.0,
    medium_w: float = 2.0,
    slow_w: float = 1.0,
) -> pd.Series:
    """Ultimate Oscillator, identical to ``ta.uo(..., talib=False)`` without its row-wise
    DataFrame max/min (2.5 ms of pandas overhead per 2,520 bars)."""
    prev_close = close.shift(1).to_numpy()
    top = np.fmax(high.to_numpy(), prev_close)
    bottom = np.fmin(low.to_numpy(), prev_close)
    buying = pd.Series(close.to_numpy() - bottom)
    true_range = pd.Series(top - bottom)
    weighted = sum(
        weight * (buying.rolling(n).sum() / true_range.rolling(n).sum()).to_numpy()
        for n, weight in ((fast, fast_w), (medium, medium_w), (slow, slow_w))
    )
    total = fast_w + medium_w + slow_w
    return _series(100 * weighted / total, close, f"UO_{fast}_{medium}_{slow}")


def macd(close: pd.Series, fast: int = 12, slow: int = 26, signal: int = 9) -> pd.DataFrame:
    """MACD line, signal and histogram, identical to ``ta.macd(..., talib=False)``: the line is
    ``ta.ema(fast) - ta.ema(slow)`` and the signal ``ta.ema(signal)`` of the line from its first
    defined value."""
    fast_ma = shared(ta.ema, close, length=fast, talib=False)
    slow_ma = shared(ta.ema, close, length=slow, talib=False)
    line = fast_ma - slow_ma
    signal_ma = ta.ema(line.loc[line.first_valid_index() :], length=signal, talib=False)
    props = f"_{fast}_{slow}_{signal}"
    return pd.DataFrame(
        {f"MACD{props}": line, f"MACDh{props}": line - signal_ma, f"MACDs{props}": signal_ma},
        index=close.index,
    )


def stochrsi(
    close: pd.Series, length: int = 14, rsi_length: int = 14, k: int = 3, d: int = 3
) -> pd.DataFrame:
    """Stochastic RSI %K and %D, identical to ``ta.stochrsi(..., talib=False)``: the stochastic
    of ``ta.rsi(rsi_length)`` over ``length`` bars, smoothed by ``ta.sma(k)``, then by
    ``ta.sma(d)``."""
    rsi = shared(ta.rsi, close, length=rsi_length, talib=False)
    lowest, highest = rsi.rolling(length).min(), rsi.rolling(length).max()
    stoch = 100 * (rsi - lowest) / non_zero_range(highest, lowest)
    stoch_k = ta.sma(stoch, length=k, talib=False)
    stoch_d = ta.sma(stoch_k, length=d, talib=False)
    props = f"_{length}_{rsi_length}_{k}_{d}"
    return pd.DataFrame(
        {f"STOCHRSIk{props}": stoch_k, f"STOCHRSId{props}": stoch_d}, index=close.index
    )


def kc(
    high: pd.Series, low: pd.Series, close: pd.Series, length: int = 20, scalar: float = 2
) -> pd.DataFrame:
    """Keltner channel, identical to ``ta.kc(..., talib=False)``: ``ta.ema(length)`` of close
    plus and minus ``scalar`` times ``ta.ema(length)`` of ``ta.true_range``."""
    true_range = shared(ta.true_range, high, low, close, talib=False)
    basis = ta.ema(close, length=length, talib=False)
    band = ta.ema(true_range, length=length, talib=False)
    props = f"e_{length}_{scalar}"
    return pd.DataFrame(
        {
            f"KCL{props}": basis - scalar * band,
            f"KCB{props}": basis,
            f"KCU{props}": basis + scalar * band,
        },
        index=close.index,
    )


def momentum_atr(
    high: pd.Series, low: pd.Series, close: pd.Series, length: int = 10, atr_length: int = 14
) -> pd.Series:
    """``ta.mom(close, length)`` divided by :func:`atr` over ``atr_length``: momentum in ATR
    units."""
    mom = ta.mom(close, length=length, talib=False)
    average_range = shared(atr, high, low, close, length=atr_length)
    return _series(safe_divide(mom, average_range), close, f"MOMATR_{length}_{atr_length}")


def ma_spread(close: pd.Series, fast: int = 20, slow: int = 50) -> pd.Series:
    """``100 * (SMA(fast) / SMA(slow) - 1)`` with ``ta.sma``."""
    fast_ma = shared(ta.sma, close, length=fast, talib=False)
    slow_ma = shared(ta.sma, close, length=slow, talib=False)
    return _series(100 * (safe_divide(fast_ma, slow_ma) - 1), close, f"SMASPREAD_{fast}_{slow}")


def ma_slope(close: pd.Series, length: int = 20, lookback: int = 5) -> pd.Series:
    """``ta.slope`` of ``ta.sma(length)`` over ``lookback`` bars, as % of the SMA per bar."""
    sma = shared(ta.sma, close, length=length, talib=False)
    slope = ta.slope(sma, length=lookback)
    return _series(100 * safe_divide(slope, sma), close, f"SMASLOPE_{length}_{lookback}")


def realized_vol(close: pd.Series, length: int = 20) -> pd.Series:
    """``ta.stdev`` (ddof=1) of 1-bar ``ta.log_return`` over ``length`` bars, annualized."""
    returns = shared(ta.log_return, close, length=1)
    std = ta.stdev(returns, length=length, ddof=1, talib=False)
    return _series(std.to_numpy() * np.sqrt(TRADING_DAYS_PER_YEAR), close, f"RV_{length}")


def realized_vol_ratio(close: pd.Series, fast: int = 10, slow: int = 60) -> pd.Series:
    """:func:`realized_vol` over ``fast`` bars divided by the one over ``slow`` bars."""
    ratio = safe_divide(
        shared(realized_vol, close, length=fast), shared(realized_vol, close, length=slow)
    )
    return _series(ratio, close, f"RVRATIO_{fast}_{slow}")


def parkinson_vol(high: pd.Series, low: pd.Series, length: int = 20) -> pd.Series:
    """Parkinson volatility ``sqrt(mean(ln(high / low)^2) / (4 ln 2))`` over ``length`` bars,
    annualized; pandas-ta has no range-based volatility estimator."""
    ratio = safe_divide(high, low)
    log_range = np.log(ratio, out=np.zeros(len(ratio)), where=ratio > 0)
    mean_sq = pd.Series(log_range**2).rolling(length).mean().to_numpy()
    vol = np.sqrt(mean_sq / (4 * np.log(2)) * TRADING_DAYS_PER_YEAR)
    return _series(vol, high, f"PARKINSON_{length}")


def obv_trend(close: pd.Series, volume: pd.Series, length: int = 20) -> pd.Series:
    """Change of ``ta.obv`` over ``length`` bars divided by the volume of those bars (-1..1)."""
    obv = shared(ta.obv, close, volume, talib=False)
    total = volume.rolling(length).sum()
    return _series(safe_divide(obv.diff(length), total), close, f"OBVTREND_{length}")


def _zscore(level: pd.Series, length: int) -> np.ndarray:
    mean = ta.sma(level, length=length, talib=False)
    std = ta.stdev(level, length=length, ddof=1, talib=False)
    return safe_divide(level - mean, std)


def obv_zscore(close: pd.Series, volume: pd.Series, length: int = 50) -> pd.Series:
    """z-score of ``ta.obv`` over ``length`` bars (OBV's level is not scale-free; this is)."""
    obv = shared(ta.obv, close, volume, talib=False)
    return _series(_zscore(obv, length), close, f"OBVZ_{length}")


def ad_zscore(
    high: pd.Series, low: pd.Series, close: pd.Series, volume: pd.Series, length: int = 50
) -> pd.Series:
    """z-score of the accumulation/distribution line ``ta.ad`` over ``length`` bars."""
    ad = shared(ta.ad, high, low, close, volume, talib=False)
    return _series(_zscore(ad, length), close, f"ADZ_{length}")


def adosc_volume(
    high: pd.Series,
    low: pd.Series,
    close: pd.Series,
    volume: pd.Series,
    fast: int = 3,
    slow: int = 10,
    length: int = 20,
) -> pd.Series:
    """The Chaikin A/D oscillator divided by the ``length``-bar mean volume.

    The oscillator is identical to ``ta.adosc(fast, slow, talib=False)``: ``ta.ema(fast)`` minus
    ``ta.ema(slow)`` of ``ta.ad``, the A/D line :func:`ad_zscore` also reads.
    """
    ad = shared(ta.ad, high, low, close, volume, talib=False)
    adosc = ta.ema(ad, length=fast, talib=False) - ta.ema(ad, length=slow, talib=False)
    mean_volume = shared(ta.sma, volume, length=length, talib=False)
    return _series(safe_divide(adosc, mean_volume), close, f"ADOSCV_{fast}_{slow}_{length}")


def volume_ratio(volume: pd.Series, fast: int = 1, slow: int = 20) -> pd.Series:
    """Mean volume over ``fast`` bars (the bar itself when 1) / mean volume over ``slow`` bars."""
    fast_mean = volume if fast == 1 else shared(ta.sma, volume, length=fast, talib=False)
    slow_mean = shared(ta.sma, volume, length=slow, talib=False)
    return _series(safe_divide(fast_mean, slow_mean), volume, f"VOLRATIO_{fast}_{slow}")


def _range(high: pd.Series, low: pd.Series) -> np.ndarray:
    return high.to_numpy() - low.to_numpy()


def body_ratio(open_: pd.Series, high: pd.Series, low: pd.Series, close: pd.Series) -> pd.Series:
    """``(close - open) / (high - low)``: ``ta.bop`` without its epsilon, which turns a flat bar
    (open = high = low = close, e.g. a halted stock) into a full bullish body of 1."""
    body = close.to_numpy() - open_.to_numpy()
    return _series(safe_divide(body, _range(high, low)), close, "BODYRATIO")


def upper_wick(open_: pd.Series, high: pd.Series, low: pd.Series, close: pd.Series) -> pd.Series:
    """``(high - max(open, close)) / (high - low)``."""
    top = np.maximum(open_.to_numpy(), close.to_numpy())
    return _series(safe_divide(high.to_numpy() - top, _range(high, low)), close, "UPPERWICK")


def lower_wick(open_: pd.Series, high: pd.Series, low: pd.Series, close: pd.Series) -> pd.Series:
    """``(min(open, close) - low) / (high - low)``."""
    bottom = np.minimum(open_.to_numpy(), close.to_numpy())
    return _series(safe_divide(bottom - low.to_numpy(), _range(high, low)), close, "LOWERWICK")


def gap(open_: pd.Series, close: pd.Series) -> pd.Series:
    """``100 * (open / previous close - 1)``; NaN on the first bar."""
    prev_close = close.shift(1).to_numpy()
    return _series(100 * (safe_divide(open_, prev_close) - 1), close, "GAP")


def engulfing(open_: pd.Series, high: pd.Series, low: pd.Series, close: pd.Series) -> pd.Series:
    """+1 when a rising body engulfs the previous falling body, -1 for the mirror, else 0.

    Engulfing: the body's open is at or beyond the previous close and its close at or beyond the
    previous open, with at least one of the two strictly beyond. NaN on the first bar.
    """
    o, c = open_.to_numpy(), close.to_numpy()
    po, pc = np.roll(o, 1), np.roll(c, 1)
    covers_up = (o <= pc) & (c >= po) & ((o < pc) | (c > po))
    covers_down = (o >= pc) & (c <= po) & ((o > pc) | (c < po))
    bullish = (pc < po) & (c > o) & covers_up
    bearish = (pc > po) & (c < o) & covers_down
    out = bullish.astype(np.float64) - bearish.astype(np.float64)
    out[:1] = np.nan
    return _series(out, close, "ENGULFING")


def heikin_ashi_body(
    open_: pd.Series, high: pd.Series, low: pd.Series, close: pd.Series
) -> pd.Series:
    """Heikin-Ashi (``ta.ha``) body / range: ``(HA_close - HA_open) / (HA_high - HA_low)``."""
    ha = ta.ha(open_, high, low, close)
    body = ha["HA_close"].to_numpy() - ha["HA_open"].to_numpy()
    span = ha["HA_high"].to_numpy() - ha["HA_low"].to_numpy()
    return _series(safe_divide(body, span), close, "HABODY")
