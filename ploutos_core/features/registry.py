"""The feature registry: one row per feature, in the order the model sees them.

Each row says how the feature is computed -- a pandas-ta indicator (``ta.<name>``) or one of our
functions (``custom.<name>``, only where pandas-ta lacks the indicator or gets it wrong), its
parameters, which output column to take, and a scale-free transform of that column -- plus its
warm-up and a one-line meaning. :mod:`ploutos_core.features.compute` runs the table with one
generic loop; ``docs/FEATURES.md`` is generated from it. Adding a feature is adding a row.

Warm-up
    ``warmup`` is the number of leading bars a feature needs before its value can be used: at
    least the bars before its first defined value, and for recursive smoothers (EMA, RMA,
    Heikin-Ashi) also the bars until the value no longer depends on where the series starts
    (computed from two different start bars, the values agree to within 1% of the feature's
    spread). :data:`WARMUP_BARS` is the largest of them; those leading rows are dropped per ticker.

Division by zero
    Our functions and transforms divide with :func:`~ploutos_core.features.custom.safe_divide`,
    which gives 0 where the denominator is exactly 0 (a flat bar, a flat window, a window without
    volume). pandas-ta's own divisions can still give NaN or inf on such degenerate input (e.g.
    RSI over a perfectly flat stretch); after the warm-up rows are dropped, any value that is not
    finite is set to 0. Both rules are deterministic, so the same input always gives the same bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

GROUPS: tuple[str, ...] = (
    "momentum",
    "trend",
    "volatility",
    "volume",
    "support_resistance",
    "price_action",
)

# Transform name -> formula applied to the indicator's output column ``x`` (documentation; the code
# is in compute.py). Each one removes the price unit from an indicator expressed in prices.
TRANSFORMS: dict[str, str] = {
    "value": "x (already scale-free)",
    "pct_of_close": "100 * x / close",
    "close_vs": "100 * (close / x - 1)",
    "position": "(close - lower) / (upper - lower), 0 at the lower band, 1 at the upper",
    "breaks_above": "1 if close > x one bar earlier, else 0",
    "breaks_below": "1 if close < x one bar earlier, else 0",
}


@dataclass(frozen=True)
class FeatureSpec:
    """One feature: what the registry table holds about it.

    Parameters
    ----------
    name:
        Column name in the feature frames.
    group:
        One of :data:`GROUPS`.
    func:
        ``"ta.<indicator>"`` for a pandas-ta function (always called with ``talib=False``) or
        ``"custom.<function>"`` for one in :mod:`ploutos_core.features.custom`.
    params:
        Keyword arguments of the call, as sorted ``(name, value)`` pairs.
    warmup:
        Leading bars the feature needs (see the module docstring).
    meaning:
        One line for the docs.
    output:
        Column of a multi-column result; a ``(lower, upper)`` pair for the ``position`` transform.
    transform:
        Key of :data:`TRANSFORMS`.
    inputs:
        OHLCV series passed positionally, when they differ from the function's own argument names
        (e.g. ``ta.zscore`` of volume).
    """

    name: str
    group: str
    func: str
    params: tuple[tuple[str, Any], ...]
    warmup: int
    meaning: str
    output: str | tuple[str, str] | None = None
    transform: str = "value"
    inputs: tuple[str, ...] | None = None

    @property
    def call(self) -> str:
        """The call as text, e.g. ``ta.rsi(length=14)``."""
        args = [*(self.inputs or ()), *(f"{k}={v!r}" for k, v in self.params)]
        return f"{self.func}({', '.join(args)})"

    def identity(self) -> str:
        """Everything that determines the feature's values, as one line (for FEATURE_VERSION)."""
        return "|".join((self.name, self.call, repr(self.output), self.transform, str(self.warmup)))


def _row(
    name: str,
    group: str,
    func: str,
    params: dict[str, Any] | None = None,
    *,
    warmup: int,
    meaning: str,
    output: str | tuple[str, str] | None = None,
    transform: str = "value",
    inputs: tuple[str, ...] | None = None,
) -> FeatureSpec:
    return FeatureSpec(
        name=name,
        group=group,
        func=func,
        params=tuple(sorted((params or {}).items())),
        warmup=warmup,
        meaning=meaning,
        output=output,
        transform=transform,
        inputs=inputs,
    )


_M, _T, _V, _VOL, _SR, _PA = GROUPS

# One row per feature, laid out as a table.
# fmt: off
REGISTRY: tuple[FeatureSpec, ...] = (
    # --- momentum -------------------------------------------------------------------------------
    _row("rsi_7", _M, "ta.rsi", {"length": 7}, warmup=60,
         meaning="Relative Strength Index over 7 bars (Wilder's RMA), 0..100"),
    _row("rsi_14", _M, "ta.rsi", {"length": 14}, warmup=120,
         meaning="Relative Strength Index over 14 bars (Wilder's RMA), 0..100"),
    _row("rsi_21", _M, "ta.rsi", {"length": 21}, warmup=190,
         meaning="Relative Strength Index over 21 bars (Wilder's RMA), 0..100"),
    _row("roc_10", _M, "ta.roc", {"length": 10}, warmup=10,
         meaning="Rate of change over 10 bars, percent"),
    _row("roc_60", _M, "ta.roc", {"length": 60}, warmup=60,
         meaning="Rate of change over 60 bars (about a quarter), percent"),
    _row("mom_10_atr", _M, "custom.momentum_atr", {"length": 10, "atr_length": 14}, warmup=70,
         meaning="10-bar momentum (ta.mom) in units of the 14-bar ATR"),
    _row("stoch_k", _M, "ta.stoch", {"k": 14, "d": 3, "smooth_k": 3}, warmup=17,
         output="STOCHk_14_3_3", meaning="Slow stochastic %K (14, 3), 0..100"),
    _row("stoch_d", _M, "ta.stoch", {"k": 14, "d": 3, "smooth_k": 3}, warmup=19,
         output="STOCHd_14_3_3", meaning="Slow stochastic %D, 3-bar mean of %K, 0..100"),
    _row("stochrsi_k", _M, "custom.stochrsi", {"length": 14, "rsi_length": 14, "k": 3, "d": 3},
         warmup=125, output="STOCHRSIk_14_14_3_3",
         meaning="Stochastic of RSI-14 over 14 bars, %K smoothed 3, 0..100"),
    _row("stochrsi_d", _M, "custom.stochrsi", {"length": 14, "rsi_length": 14, "k": 3, "d": 3},
         warmup=125, output="STOCHRSId_14_14_3_3",
         meaning="Stochastic RSI %D, 3-bar mean of %K, 0..100"),
    _row("willr_14", _M, "ta.willr", {"length": 14}, warmup=13,
         meaning="Williams %R over 14 bars, -100..0"),
    _row("cci_20", _M, "custom.cci", {"length": 20, "c": 0.015}, warmup=19,
         meaning="Commodity Channel Index over 20 bars (typical price vs its mean deviation)"),
    _row("tsi", _M, "ta.tsi", {"fast": 13, "slow": 25, "signal": 13}, warmup=125,
         output="TSI_13_25_13", meaning="True Strength Index (13, 25), -100..100"),
    _row("tsi_signal", _M, "ta.tsi", {"fast": 13, "slow": 25, "signal": 13}, warmup=130,
         output="TSIs_13_25_13", meaning="TSI signal line, 13-bar EMA of the TSI"),
    _row("uo", _M, "custom.uo", {"fast": 7, "medium": 14, "slow": 28}, warmup=28,
         meaning="Ultimate Oscillator (7, 14, 28), 0..100"),
    _row("ppo", _M, "ta.ppo", {"fast": 12, "slow": 26, "signal": 9}, warmup=25,
         output="PPO_12_26_9", meaning="Percentage Price Oscillator: (SMA12 - SMA26) / SMA26, %"),
    _row("ppo_signal", _M, "ta.ppo", {"fast": 12, "slow": 26, "signal": 9}, warmup=65,
         output="PPOs_12_26_9", meaning="PPO signal line, 9-bar EMA of the PPO"),
    _row("ppo_hist", _M, "ta.ppo", {"fast": 12, "slow": 26, "signal": 9}, warmup=65,
         output="PPOh_12_26_9", meaning="PPO histogram, PPO minus its signal"),
    # --- trend ----------------------------------------------------------------------------------
    _row("macd_pct", _T, "custom.macd", {"fast": 12, "slow": 26, "signal": 9}, warmup=120,
         output="MACD_12_26_9", transform="pct_of_close",
         meaning="MACD line (EMA12 - EMA26) as % of close"),
    _row("macd_signal_pct", _T, "custom.macd", {"fast": 12, "slow": 26, "signal": 9}, warmup=130,
         output="MACDs_12_26_9", transform="pct_of_close",
         meaning="MACD signal line (9-bar EMA of MACD) as % of close"),
    _row("macd_hist_pct", _T, "custom.macd", {"fast": 12, "slow": 26, "signal": 9}, warmup=130,
         output="MACDh_12_26_9", transform="pct_of_close",
         meaning="MACD histogram (MACD - signal) as % of close"),
    _row("adx_14", _T, "custom.adx", {"length": 14}, warmup=160, output="ADX_14",
         meaning="Average Directional Index over 14 bars, trend strength 0..100"),
    _row("dmp_14", _T, "custom.adx", {"length": 14}, warmup=120, output="DMP_14",
         meaning="Plus directional indicator +DI over 14 bars, 0..100"),
    _row("dmn_14", _T, "custom.adx", {"length": 14}, warmup=120, output="DMN_14",
         meaning="Minus directional indicator -DI over 14 bars, 0..100"),
    _row("aroon_up_25", _T, "custom.aroon", {"length": 25}, warmup=25, output="AROONU_25",
         meaning="Aroon up: 100 * (1 - bars since the 25-bar high / 25)"),
    _row("aroon_down_25", _T, "custom.aroon", {"length": 25}, warmup=25, output="AROOND_25",
         meaning="Aroon down: 100 * (1 - bars since the 25-bar low / 25)"),
    _row("aroon_osc_25", _T, "custom.aroon", {"length": 25}, warmup=25, output="AROONOSC_25",
         meaning="Aroon oscillator, up minus down, -100..100"),
    _row("close_sma_10", _T, "ta.sma", {"length": 10}, warmup=9, transform="close_vs",
         meaning="Close vs its 10-bar simple moving average, %"),
    _row("close_sma_20", _T, "ta.sma", {"length": 20}, warmup=19, transform="close_vs",
         meaning="Close vs its 20-bar simple moving average, %"),
    _row("close_sma_50", _T, "ta.sma", {"length": 50}, warmup=49, transform="close_vs",
         meaning="Close vs its 50-bar simple moving average, %"),
    _row("close_sma_100", _T, "ta.sma", {"length": 100}, warmup=99, transform="close_vs",
         meaning="Close vs its 100-bar simple moving average, %"),
    _row("close_sma_200", _T, "ta.sma", {"length": 200}, warmup=199, transform="close_vs",
         meaning="Close vs its 200-bar simple moving average, %"),
    _row("close_ema_12", _T, "ta.ema", {"length": 12}, warmup=50, transform="close_vs",
         meaning="Close vs its 12-bar exponential moving average, %"),
    _row("close_ema_26", _T, "ta.ema", {"length": 26}, warmup=110, transform="close_vs",
         meaning="Close vs its 26-bar exponential moving average, %"),
    _row("sma_20_50", _T, "custom.ma_spread", {"fast": 20, "slow": 50}, warmup=49,
         meaning="20-bar SMA vs 50-bar SMA, % (short-term trend)"),
    _row("sma_50_200", _T, "custom.ma_spread", {"fast": 50, "slow": 200}, warmup=199,
         meaning="50-bar SMA vs 200-bar SMA, % (golden/death cross state)"),
    _row("slope_sma_20", _T, "custom.ma_slope", {"length": 20, "lookback": 5}, warmup=24,
         meaning="Slope of the 20-bar SMA over 5 bars (ta.slope), % of the SMA per bar"),
    _row("slope_sma_50", _T, "custom.ma_slope", {"length": 50, "lookback": 10}, warmup=59,
         meaning="Slope of the 50-bar SMA over 10 bars (ta.slope), % of the SMA per bar"),
    _row("er_10", _T, "ta.er", {"length": 10}, warmup=10,
         meaning="Kaufman efficiency ratio over 10 bars: net move / path length, 0..1"),
    # --- volatility -----------------------------------------------------------------------------
    _row("bb_pctb_20", _V, "ta.bbands", {"length": 20, "lower_std": 2.0, "upper_std": 2.0},
         warmup=19, output=("BBL_20_2.0_2.0", "BBU_20_2.0_2.0"), transform="position",
         meaning="Bollinger %B (20 bars, 2 std, ddof=1): 0 at the lower band, 1 at the upper"),
    _row("bb_width_20", _V, "ta.bbands", {"length": 20, "lower_std": 2.0, "upper_std": 2.0},
         warmup=19, output="BBB_20_2.0_2.0",
         meaning="Bollinger bandwidth: (upper - lower) / middle, %"),
    _row("atr_pct_14", _V, "custom.atr", {"length": 14}, warmup=90, transform="pct_of_close",
         meaning="Average True Range over 14 bars (Wilder's RMA) as % of close"),
    _row("kc_pos_20", _V, "custom.kc", {"length": 20, "scalar": 2}, warmup=75,
         output=("KCLe_20_2", "KCUe_20_2"), transform="position",
         meaning="Position of close in the Keltner channel (EMA20 +- 2 x range EMA)"),
    _row("dc_pos_20", _V, "ta.donchian", {"lower_length": 20, "upper_length": 20}, warmup=19,
         output=("DCL_20_20", "DCU_20_20"), transform="position",
         meaning="Position of close in the 20-bar Donchian channel, 0..1"),
    _row("rv_10", _V, "custom.realized_vol", {"length": 10}, warmup=10,
         meaning="Realized volatility: 10-bar std of log returns, annualized"),
    _row("rv_20", _V, "custom.realized_vol", {"length": 20}, warmup=20,
         meaning="Realized volatility: 20-bar std of log returns, annualized"),
    _row("rv_60", _V, "custom.realized_vol", {"length": 60}, warmup=60,
         meaning="Realized volatility: 60-bar std of log returns, annualized"),
    _row("rv_ratio_10_60", _V, "custom.realized_vol_ratio", {"fast": 10, "slow": 60}, warmup=60,
         meaning="Realized volatility 10 bars / 60 bars (volatility regime change)"),
    _row("parkinson_20", _V, "custom.parkinson_vol", {"length": 20}, warmup=19,
         meaning="Parkinson high-low volatility over 20 bars, annualized"),
    _row("ulcer_14", _V, "ta.ui", {"length": 14}, warmup=26,
         meaning="Ulcer index over 14 bars: RMS drawdown from the rolling high, %"),
    # --- volume ---------------------------------------------------------------------------------
    _row("obv_trend_20", _VOL, "custom.obv_trend", {"length": 20}, warmup=21,
         meaning="20-bar change of OBV (ta.obv) / 20-bar volume, -1..1"),
    _row("obv_z_50", _VOL, "custom.obv_zscore", {"length": 50}, warmup=50,
         meaning="z-score of OBV (ta.obv) over 50 bars"),
    _row("mfi_14", _VOL, "ta.mfi", {"length": 14}, warmup=14,
         meaning="Money Flow Index over 14 bars, 0..100"),
    _row("cmf_20", _VOL, "ta.cmf", {"length": 20}, warmup=19,
         meaning="Chaikin Money Flow over 20 bars, -1..1"),
    _row("ad_z_50", _VOL, "custom.ad_zscore", {"length": 50}, warmup=49,
         meaning="z-score of the accumulation/distribution line (ta.ad) over 50 bars"),
    _row("adosc_vol", _VOL, "custom.adosc_volume", {"fast": 3, "slow": 10, "length": 20},
         warmup=40, meaning="Chaikin A/D oscillator (as ta.adosc 3, 10) / 20-bar mean volume"),
    _row("vol_ratio_20", _VOL, "custom.volume_ratio", {"fast": 1, "slow": 20}, warmup=19,
         meaning="Volume / its 20-bar mean"),
    _row("vol_ratio_5_50", _VOL, "custom.volume_ratio", {"fast": 5, "slow": 50}, warmup=49,
         meaning="5-bar mean volume / 50-bar mean volume"),
    _row("vol_z_20", _VOL, "ta.zscore", {"length": 20}, warmup=19, inputs=("volume",),
         meaning="z-score of volume over 20 bars"),
    _row("pvo", _VOL, "ta.pvo", {"fast": 12, "slow": 26, "signal": 9}, warmup=120,
         output="PVO_12_26_9", meaning="Percentage Volume Oscillator (EMA12 vs EMA26 of volume)"),
    _row("pvo_hist", _VOL, "ta.pvo", {"fast": 12, "slow": 26, "signal": 9}, warmup=110,
         output="PVOh_12_26_9", meaning="PVO histogram, PVO minus its 9-bar EMA"),
    _row("close_vwma_20", _VOL, "ta.vwma", {"length": 20}, warmup=19, transform="close_vs",
         meaning="Close vs the 20-bar volume-weighted moving average, %"),
    # --- support / resistance -------------------------------------------------------------------
    _row("dist_high_20", _SR, "ta.donchian", {"lower_length": 20, "upper_length": 20},
         warmup=19, output="DCU_20_20", transform="close_vs",
         meaning="Close vs the 20-bar highest high, % (<= 0)"),
    _row("dist_high_50", _SR, "ta.donchian", {"lower_length": 50, "upper_length": 50},
         warmup=49, output="DCU_50_50", transform="close_vs",
         meaning="Close vs the 50-bar highest high, % (<= 0)"),
    _row("dist_high_100", _SR, "ta.donchian", {"lower_length": 100, "upper_length": 100},
         warmup=99, output="DCU_100_100", transform="close_vs",
         meaning="Close vs the 100-bar highest high, % (<= 0)"),
    _row("dist_low_20", _SR, "ta.donchian", {"lower_length": 20, "upper_length": 20},
         warmup=19, output="DCL_20_20", transform="close_vs",
         meaning="Close vs the 20-bar lowest low, % (>= 0)"),
    _row("dist_low_50", _SR, "ta.donchian", {"lower_length": 50, "upper_length": 50},
         warmup=49, output="DCL_50_50", transform="close_vs",
         meaning="Close vs the 50-bar lowest low, % (>= 0)"),
    _row("dist_low_100", _SR, "ta.donchian", {"lower_length": 100, "upper_length": 100},
         warmup=99, output="DCL_100_100", transform="close_vs",
         meaning="Close vs the 100-bar lowest low, % (>= 0)"),
    _row("range_pos_100", _SR, "ta.donchian", {"lower_length": 100, "upper_length": 100},
         warmup=99, output=("DCL_100_100", "DCU_100_100"), transform="position",
         meaning="Position of close in the 100-bar high-low range, 0..1"),
    _row("breakout_up_20", _SR, "ta.donchian", {"lower_length": 20, "upper_length": 20},
         warmup=20, output="DCU_20_20", transform="breaks_above",
         meaning="1 when close breaks above the previous 20-bar high"),
    _row("breakout_down_20", _SR, "ta.donchian", {"lower_length": 20, "upper_length": 20},
         warmup=20, output="DCL_20_20", transform="breaks_below",
         meaning="1 when close breaks below the previous 20-bar low"),
    _row("breakout_up_50", _SR, "ta.donchian", {"lower_length": 50, "upper_length": 50},
         warmup=50, output="DCU_50_50", transform="breaks_above",
         meaning="1 when close breaks above the previous 50-bar high"),
    _row("breakout_down_50", _SR, "ta.donchian", {"lower_length": 50, "upper_length": 50},
         warmup=50, output="DCL_50_50", transform="breaks_below",
         meaning="1 when close breaks below the previous 50-bar low"),
    # --- price action ---------------------------------------------------------------------------
    _row("ret_1", _PA, "ta.log_return", {"length": 1}, warmup=1,
         meaning="Log return over 1 bar"),
    _row("ret_5", _PA, "ta.log_return", {"length": 5}, warmup=5,
         meaning="Log return over 5 bars"),
    _row("ret_20", _PA, "ta.log_return", {"length": 20}, warmup=20,
         meaning="Log return over 20 bars"),
    _row("body_ratio", _PA, "custom.body_ratio", warmup=0,
         meaning="Candle body / range: (close - open) / (high - low), -1..1 (balance of power)"),
    _row("upper_wick", _PA, "custom.upper_wick", warmup=0,
         meaning="Upper wick / range: (high - max(open, close)) / (high - low), 0..1"),
    _row("lower_wick", _PA, "custom.lower_wick", warmup=0,
         meaning="Lower wick / range: (min(open, close) - low) / (high - low), 0..1"),
    _row("true_range_pct", _PA, "ta.true_range", warmup=1, transform="pct_of_close",
         meaning="This bar's true range (gaps included) as % of close"),
    _row("gap_pct", _PA, "custom.gap", warmup=1,
         meaning="Opening gap: open vs the previous close, %"),
    _row("doji", _PA, "ta.cdl_doji", {"length": 10, "scalar": 1}, warmup=9,
         meaning="1 when the body is under 10% of the 10-bar mean range (doji candle)"),
    _row("inside_bar", _PA, "ta.cdl_inside", {"scalar": 1}, warmup=1,
         meaning="1 when the bar's high-low range lies inside the previous bar's"),
    _row("engulfing", _PA, "custom.engulfing", warmup=1,
         meaning="+1 bullish engulfing, -1 bearish engulfing, 0 otherwise"),
    _row("ha_body", _PA, "custom.heikin_ashi_body", warmup=12,
         meaning="Heikin-Ashi body / range (ta.ha), -1..1: smoothed candle direction"),
)
# fmt: on

FEATURE_NAMES: tuple[str, ...] = tuple(spec.name for spec in REGISTRY)
WARMUP_BARS: int = max(spec.warmup for spec in REGISTRY)
MIN_HISTORY_BARS: int = WARMUP_BARS + 1
"""Rows a ticker needs to get any feature row: the warm-up plus one bar (``read_ohlcv``'s
``min_history`` in the pipeline and the command line)."""


def _feature_version() -> str:
    """Short hash of what determines the values: the rows, our code and pandas-ta's version."""
    digest = hashlib.sha256()
    for spec in REGISTRY:
        digest.update(spec.identity().encode())
        digest.update(b"\n")
    digest.update(f"pandas_ta={version('pandas-ta')}\n".encode())
    here = Path(__file__).parent
    for module in ("custom.py", "compute.py"):
        digest.update((here / module).read_bytes())
    return digest.hexdigest()[:12]


FEATURE_VERSION: str = _feature_version()
