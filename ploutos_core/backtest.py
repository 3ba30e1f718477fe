"""Out-of-sample evaluation: run a policy as one continuous portfolio, benchmark it, report it.

A backtest answers "would this model have made money, after costs, on data it never saw,
compared with simply holding the universe?":

- :func:`load_trained_model` loads a saved PPO model (``final_model.zip`` or any checkpoint), its
  VecNormalize statistics in evaluation mode and the ``manifest.json`` of its directory;
  :func:`check_manifest` refuses data whose features, feature order or tickers differ from it.
- :func:`simulate` steps the environment's core (:class:`ploutos_core.env.PortfolioCore`, the
  very execution and cost model of training) with any policy, from the first to the last bar of
  a market period, and records every bar and every fill.
- :func:`buy_and_hold_benchmark` and :func:`cash_benchmark` are the yardsticks over the same bars.
- :func:`run_backtest` does all of it over the manifest's test period and writes the artifacts.

Timing. A decision taken on bar ``t``'s observation fills at ``open[t+1]`` and is marked at
``close[t+1]``. Every equity series therefore starts with the starting capital on the first bar of
the period (nothing can have been filled yet) and the first fills happen at the second bar's open:
the first open of the period at which any order can execute. The benchmark buys at that same open.

Metric conventions are those of :mod:`ploutos_core.metrics` (``metrics`` is re-exported here).
"""

from __future__ import annotations

import contextlib
import json
import pickle
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ploutos_core import plots
from ploutos_core.config import BacktestConfig, EnvConfig, TrainingConfig, parse_config
from ploutos_core.env import MarketData, PortfolioCore
from ploutos_core.errors import ManifestError
from ploutos_core.metrics import (
    METRIC_NAMES,
    TRADE_STAT_NAMES,
    empty_fills,
    json_safe,
    metrics,
    trade_stats,
)
from ploutos_core.storage import write_bytes_atomic, write_json_atomic, write_parquet_atomic

__all__ = [
    "BacktestReport",
    "BacktestRun",
    "Policy",
    "TrainedModel",
    "accounting_error",
    "buy_and_hold_benchmark",
    "cash_benchmark",
    "check_manifest",
    "format_metrics_table",
    "load_trained_model",
    "metrics",
    "run_backtest",
    "simulate",
    "trade_stats",
]

MANIFEST = "manifest.json"
EQUITY_FILE = "equity.parquet"
TRADES_FILE = "trades.parquet"
POSITIONS_FILE = "positions.parquet"
METRICS_FILE = "metrics.json"
EQUITY_PLOT = "backtest_equity.png"
SIDES = ("strategy", "buy_and_hold", "cash")
# One observation per bar: the policy's forward pass is too small to gain from more threads, and
# on a busy 2-core machine their synchronisation made it 3-6 times slower (benchmark).
INFERENCE_THREADS = 1
SIDE_LABELS = {"strategy": "Strategy", "buy_and_hold": "Buy & hold", "cash": "Cash"}

Policy = Callable[[np.ndarray], np.ndarray]
"""Observations ``float32 [1, obs_size]`` -> actions ``[1, n_tickers]`` (0 hold, 1 buy, 2 sell)."""


@dataclass(frozen=True)
class BacktestRun:
    """One portfolio over a market period: per-bar state and every fill.

    Attributes
    ----------
    dates : np.ndarray
        ``datetime64[ns] [T]``, the bars of the period.
    tickers : tuple[str, ...]
        ``[N]``, the columns of ``positions``.
    equity, cash, gross_exposure : np.ndarray
        ``float64 [T]`` marked at each bar's close; ``equity[0]`` is the starting capital;
        gross exposure is ``sum(|shares| * close)``.
    positions : np.ndarray
        ``float64 [T, N]`` shares held after each bar.
    fills : pd.DataFrame
        ``date, ticker, side ("buy"/"sell"), quantity (> 0), price, cost``, in date order.
    """

    dates: np.ndarray
    tickers: tuple[str, ...]
    equity: np.ndarray
    cash: np.ndarray
    gross_exposure: np.ndarray
    positions: np.ndarray
    fills: pd.DataFrame

    def metrics(self) -> dict[str, float]:
        """Return metrics and trade statistics of this run, in one dict."""
        return {
            **metrics(self.equity),
            **trade_stats(self.fills, self.equity, self.gross_exposure),
        }

    def equity_frame(self) -> pd.DataFrame:
        """``equity``, ``cash`` and ``gross_exposure`` indexed by ``date``."""
        index = pd.DatetimeIndex(self.dates, name="date")
        return pd.DataFrame(
            {"equity": self.equity, "cash": self.cash, "gross_exposure": self.gross_exposure},
            index=index,
        )

    def positions_frame(self) -> pd.DataFrame:
        """Shares held per ticker (columns) and date (index)."""
        return pd.DataFrame(
            self.positions,
            index=pd.DatetimeIndex(self.dates, name="date"),
            columns=pd.Index(self.tickers, name="ticker"),
        )


def _fills_frame(
    dates: np.ndarray,
    tickers: tuple[str, ...],
    bars: np.ndarray,
    columns: np.ndarray,
    signed_shares: np.ndarray,
    price: np.ndarray,
    cost: np.ndarray,
) -> pd.DataFrame:
    if bars.size == 0:
        return empty_fills()
    order = np.lexsort((columns, bars))
    bars, columns = bars[order], columns[order]
    signed_shares, price, cost = signed_shares[order], price[order], cost[order]
    return pd.DataFrame(
        {
            "date": dates[bars].astype("datetime64[ns]"),
            "ticker": pd.array(np.asarray(tickers, dtype=object)[columns], dtype=pd.StringDtype()),
            "side": pd.array(np.where(signed_shares > 0, "buy", "sell"), dtype=pd.StringDtype()),
            "quantity": np.abs(signed_shares),
            "price": price.astype(np.float64),
            "cost": cost.astype(np.float64),
        }
    )


def _backtest_env_config(env_config: EnvConfig) -> EnvConfig:
    # The equity floor ends training episodes; a backtest follows one portfolio to the end.
    return env_config.model_copy(update={"min_equity_fraction": 0.0})


def simulate(market: MarketData, env_config: EnvConfig, policy: Policy) -> BacktestRun:
    """Run ``policy`` as one continuous portfolio from the first to the last bar of ``market``.

    The environment's core executes the orders (fills at the next open, costs, position caps,
    forced sales of delisted tickers) exactly as in training; this function only records its
    state after every bar and its ``last_fill_*`` arrays. The training-only equity floor
    (``min_equity_fraction``) is switched off so the portfolio is followed to the last bar.

    Parameters
    ----------
    market:
        The period to run over (e.g. ``market.period(test_start, test_end)``).
    env_config:
        Cash, order sizing and costs (the model's training config).
    policy:
        Called once per bar with the core's raw observation ``float32 [1, obs_size]``; returns
        actions ``[1, N]`` or ``[N]``. It is called in bar order, so a stateful policy may count
        its calls (bar ``i`` of the run is ``market.dates[i]``).

    Returns
    -------
    BacktestRun
        ``T`` bars; before the core's first valid bar (no tradable ticker yet) the portfolio is
        all cash.
    """
    config = _backtest_env_config(env_config)
    core = PortfolioCore(market, config, 1, start_date=market.dates[0], run_to_end=True)
    T, N = market.T, market.N
    start = int(core.t[0])
    equity = np.full(T, config.initial_cash)
    cash = np.full(T, config.initial_cash)
    positions = np.zeros((T, N))
    fill_bars: list[np.ndarray] = []
    fill_columns: list[np.ndarray] = []
    fill_values: list[np.ndarray] = []  # rows: signed shares, price, cost
    for _ in range(start, T - 1):
        actions = np.asarray(policy(core.observe())).reshape(1, N)
        core.step(actions)
        bar = int(core.fill_index[0])
        equity[bar] = core.equity[0]
        cash[bar] = core.cash[0]
        positions[bar] = core.shares[0]
        filled = np.flatnonzero(core.last_fill_shares[0])
        if filled.size:
            fill_bars.append(np.full(filled.size, bar))
            fill_columns.append(filled)
            fill_values.append(
                np.stack(
                    [
                        core.last_fill_shares[0, filled],
                        core.last_fill_price[0, filled],
                        core.last_fill_cost[0, filled],
                    ]
                )
            )
    gross = np.einsum("tn,tn->t", np.abs(positions), market.close.astype(np.float64))
    fills = empty_fills()
    if fill_bars:
        signed, price, cost = np.concatenate(fill_values, axis=1)
        fills = _fills_frame(
            market.dates,
            market.tickers,
            np.concatenate(fill_bars),
            np.concatenate(fill_columns),
            signed,
            price,
            cost,
        )
    return BacktestRun(market.dates, market.tickers, equity, cash, gross, positions, fills)


def buy_and_hold_benchmark(market: MarketData, env_config: EnvConfig) -> BacktestRun:
    """Equal-weight buy-and-hold of the tradable universe, with the environment's costs.

    Sizing rule: the starting capital is split into ``M`` equal sleeves, one per ticker that is
    tradable on at least one bar from the second bar of the period on (the first bar at whose
    open an order can fill, see the module docstring; when the first bar has no tradable
    ticker, the bar after the first one that has, as for the strategy). A sleeve buys its
    ticker at the open of the ticker's first such tradable bar, notional and cost together
    spending the sleeve exactly (``notional = sleeve / (1 + rate)``). Sleeves of tickers that
    list later wait in cash until they list, so the benchmark never rebalances and never
    borrows; tickers present from the start are each ``1/M`` of the capital, not
    ``1/(number listed at the start)``. A ticker with no tradable bar after bar ``L`` inside
    the period is sold at ``close[L]`` on the next bar, paying costs, exactly as the
    environment closes delisted positions; the proceeds stay in cash. Holdings are marked at
    each bar's (forward-filled) close.

    Parameters
    ----------
    market:
        The period (the same bars as the strategy's run).
    env_config:
        Starting capital and cost rate.
    """
    rate = env_config.costs.rate
    T, N = market.T, market.N
    capital = env_config.initial_cash
    bars = np.arange(T)[:, None]
    tradable = market.tradable.copy()
    # Like the core: the run starts on the first bar with a tradable ticker; fills come after it.
    active = np.flatnonzero(market.tradable[:-1].any(axis=1))
    tradable[: (active[0] + 1 if active.size else T)] = False
    listed = tradable.any(axis=0)
    n_sleeves = int(listed.sum())
    equity = np.full(T, capital)
    if n_sleeves == 0 or T < 2:
        return BacktestRun(
            market.dates,
            market.tickers,
            equity,
            equity.copy(),
            np.zeros(T),
            np.zeros((T, N)),
            empty_fills(),
        )
    columns = np.flatnonzero(listed)
    first = np.argmax(tradable, axis=0)[columns]
    last = (T - 1 - np.argmax(market.tradable[::-1], axis=0))[columns]
    sleeve = capital / n_sleeves
    notional = sleeve / (1.0 + rate)
    buy_price = market.open[first, columns].astype(np.float64)
    quantity = notional / buy_price
    delisted = last < T - 1
    sell_price = market.close[last, columns].astype(np.float64)
    proceeds = quantity * sell_price * delisted
    held = (bars >= first) & (bars <= last)
    positions = np.zeros((T, N))
    positions[:, columns] = held * quantity
    spent = np.bincount(first, minlength=T) * sleeve
    sell_bar = np.minimum(last + 1, T - 1)
    received = np.bincount(sell_bar, weights=proceeds * (1.0 - rate), minlength=T)
    cash = capital - np.cumsum(spent) + np.cumsum(received)
    close = market.close.astype(np.float64)
    gross = np.einsum("tn,tn->t", positions, close)
    equity = cash + gross
    sold = np.flatnonzero(delisted)
    fills = _fills_frame(
        market.dates,
        market.tickers,
        np.concatenate([first, last[sold] + 1]),
        np.concatenate([columns, columns[sold]]),
        np.concatenate([quantity, -quantity[sold]]),
        np.concatenate([buy_price, sell_price[sold]]),
        np.concatenate([np.full(columns.size, notional * rate), proceeds[sold] * rate]),
    )
    return BacktestRun(market.dates, market.tickers, equity, cash, gross, positions, fills)


def cash_benchmark(market: MarketData, env_config: EnvConfig) -> BacktestRun:
    """Staying in cash (zero interest): equity equal to the starting capital on every bar."""
    T = market.T
    capital = np.full(T, env_config.initial_cash)
    return BacktestRun(
        market.dates,
        market.tickers,
        capital,
        capital.copy(),
        np.zeros(T),
        np.zeros((T, market.N)),
        empty_fills(),
    )


def accounting_error(run: BacktestRun, market: MarketData) -> float:
    """Largest relative gap, over bars, between equity and cash + shares x close.

    ``market`` must be the period the run covers. The strategy's equity comes from the
    environment's core and its positions from the same core, so this checks the recording and
    the core's bookkeeping; a correct run is at rounding level (< 1e-9).
    """
    if run.dates.size != market.T or not np.array_equal(market.dates, run.dates):
        raise ValueError("accounting_error needs the market period the run covers")
    holdings = np.einsum("tn,tn->t", run.positions, market.close.astype(np.float64))
    return float(np.max(np.abs(run.cash + holdings - run.equity) / run.equity))


@dataclass(frozen=True)
class TrainedModel:
    """A saved policy ready for evaluation.

    Attributes
    ----------
    model : stable_baselines3.PPO
        The policy, on the CPU.
    obs_stats : stable_baselines3.common.vec_env.VecNormalize
        Observation statistics from training, frozen (``training=False``, ``norm_reward=False``).
    manifest : dict
        The model directory's ``manifest.json``.
    model_path, stats_path, manifest_path : Path
    """

    model: Any
    obs_stats: Any
    manifest: dict[str, Any]
    model_path: Path
    stats_path: Path
    manifest_path: Path

    @property
    def env_config(self) -> EnvConfig:
        """The environment settings the model was trained with (costs, sizing, capital)."""
        config = parse_config(TrainingConfig, self.manifest["config"], str(self.manifest_path))
        return config.env

    @property
    def test_period(self) -> tuple[str, str]:
        """``(start, end)`` of the test period, ISO dates."""
        period = self.manifest["test_period"]
        return str(period["start"]), str(period["end"])

    def policy(self, deterministic: bool = True) -> Policy:
        """The model as a :data:`Policy` on raw observations (normalized with ``obs_stats``).

        The actions are those of ``model.predict``: the policy network's steps of
        ``ActorCriticPolicy.get_distribution`` (features, actor latent, action logits), then one
        batched ``Categorical`` over ``[batch, N, 3]`` logits instead of SB3's
        ``MultiCategoricalDistribution``, which builds one distribution object per ticker and
        costs ~25 ms a bar at 500 tickers. Deterministic: the argmax of the same probabilities
        as SB3's ``mode()`` (tested equal); stochastic: a sample of the same distribution (not
        the same random stream as ``predict``).
        """
        import torch
        from stable_baselines3.common.preprocessing import preprocess_obs

        net = self.model.policy
        net.set_training_mode(False)
        nvec = self.model.action_space.nvec
        n_tickers, n_choices = len(nvec), int(nvec[0])

        def act(obs: np.ndarray) -> np.ndarray:
            normalized = torch.as_tensor(self.obs_stats.normalize_obs(obs), device=net.device)
            with torch.no_grad():
                features = net.pi_features_extractor(
                    preprocess_obs(normalized, net.observation_space, net.normalize_images)
                )
                logits = net.action_net(net.mlp_extractor.forward_actor(features))
                choice = torch.distributions.Categorical(
                    logits=logits.reshape(-1, n_tickers, n_choices), validate_args=False
                )
                actions = choice.probs.argmax(dim=-1) if deterministic else choice.sample()
            return actions.cpu().numpy()

        return act


_MANIFEST_KEYS = ("feature_names", "tickers", "train_period", "test_period", "config")


def _read_manifest(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ManifestError(
            f"no {MANIFEST} beside the model ({path}); a model directory written by "
            "`ploutos train` or the trained_model asset has one"
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ManifestError(f"cannot read {path}: {exc}") from exc
    missing = [key for key in _MANIFEST_KEYS if key not in manifest]
    if missing:
        raise ManifestError(f"{path} lacks the keys {missing}; retrain the model to rewrite it")
    return manifest


def _fast_load_objects(model_path: Path) -> dict[str, Any]:
    """The saved ``policy_kwargs`` with ``ortho_init=False``.

    ``PPO.load`` builds the policy, initializing it, and then overwrites every weight with the
    saved ones; orthogonal initialization of the first layer (a QR decomposition of a
    ``obs_size x 256`` matrix) costs over a second at 500 tickers for nothing.
    """
    from stable_baselines3.common.save_util import json_to_data

    try:
        with zipfile.ZipFile(model_path) as archive:
            data = json_to_data(archive.read("data").decode())
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ManifestError(f"{model_path} is not a Stable-Baselines3 model file: {exc}") from exc
    return {"policy_kwargs": {**data.get("policy_kwargs", {}), "ortho_init": False}}


def load_trained_model(model_path: str | Path) -> TrainedModel:
    """Load a model zip, its VecNormalize statistics and its directory's ``manifest.json``.

    Parameters
    ----------
    model_path:
        ``final_model.zip``, ``checkpoint_<steps>_steps.zip`` or ``interrupted_model.zip``; the
        statistics are found with :func:`ploutos_core.callbacks.stats_path_for`.

    Raises
    ------
    ManifestError
        When the model, its statistics or the manifest is missing or unreadable, or the
        statistics do not fit the model's observations.
    """
    from stable_baselines3 import PPO

    from ploutos_core.callbacks import stats_path_for

    model_path = Path(model_path)
    if not model_path.is_file():
        raise ManifestError(
            f"no model at {model_path}; pass final_model.zip or a checkpoint of a model directory"
        )
    stats_path = stats_path_for(model_path)
    if not stats_path.is_file():
        raise ManifestError(
            f"no VecNormalize statistics at {stats_path} for {model_path.name}: a model is "
            "evaluated with the statistics saved beside it"
        )
    manifest_path = model_path.parent / MANIFEST
    manifest = _read_manifest(manifest_path)
    try:
        with stats_path.open("rb") as handle:
            obs_stats = pickle.load(handle)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError) as exc:
        raise ManifestError(f"cannot read the VecNormalize statistics {stats_path}: {exc}") from exc
    obs_stats.training = False
    obs_stats.norm_reward = False
    model = PPO.load(model_path, device="cpu", custom_objects=_fast_load_objects(model_path))
    obs_shape = tuple(model.observation_space.shape)
    nvec = np.asarray(getattr(model.action_space, "nvec", []))
    if nvec.size != len(manifest["tickers"]) or not np.all(nvec == 3):
        raise ManifestError(
            f"{model_path} has action space {model.action_space} but its manifest lists "
            f"{len(manifest['tickers'])} tickers with hold/buy/sell each: the model and "
            f"{manifest_path} do not belong together"
        )
    if tuple(obs_stats.obs_rms.mean.shape) != obs_shape:
        raise ManifestError(
            f"{stats_path} normalizes observations of shape {obs_stats.obs_rms.mean.shape} but "
            f"{model_path} expects {obs_shape}: the statistics belong to another model"
        )
    return TrainedModel(model, obs_stats, manifest, model_path, stats_path, manifest_path)


def _list_difference(kind: str, saved: list[str], current: list[str], source: str) -> str | None:
    if saved == current:
        return None
    missing = [name for name in saved if name not in set(current)]
    extra = [name for name in current if name not in set(saved)]
    parts = []
    if missing:
        parts.append(f"{len(missing)} {kind} of the model are missing from the data: {missing[:8]}")
    if extra:
        parts.append(f"{len(extra)} {kind} in the data are unknown to the model: {extra[:8]}")
    if not parts:
        position = next(i for i, (a, b) in enumerate(zip(saved, current, strict=False)) if a != b)
        parts.append(
            f"the {kind} are in a different order: position {position} is "
            f"{saved[position]!r} in {source} but {current[position]!r} in the data"
        )
    return "; ".join(parts)


def check_manifest(manifest: Mapping[str, Any], market: MarketData, source: str = MANIFEST) -> None:
    """Refuse a market whose features, feature order or tickers differ from the model's.

    Observations are never truncated or padded to fit: the data must hold exactly the model's
    tickers and features, in the model's order.

    Raises
    ------
    ManifestError
        Naming every difference (missing, unknown, or the first position out of order).
    """
    problems = [
        _list_difference("features", list(manifest["feature_names"]), list(market.feature_names),
                         source),
        _list_difference("tickers", list(manifest["tickers"]), list(market.tickers), source),
    ]
    problems = [p for p in problems if p]
    if problems:
        raise ManifestError(
            f"the data does not match the model's {source}: " + "; ".join(problems)
            + ". Backtest on the data the model was trained on (same tickers and feature "
            "registry), or retrain the model"
        )


def _test_market(trained: TrainedModel, market: MarketData) -> MarketData:
    start, end = trained.test_period
    train_end = str(trained.manifest["train_period"]["end"])
    if not train_end < start:
        raise ManifestError(
            f"{trained.manifest_path}: the test period starts {start}, not after the training "
            f"period's end {train_end}; the manifest is inconsistent, retrain the model"
        )
    have = f"{str(market.dates[0])[:10]} to {str(market.dates[-1])[:10]}" if market.T else "none"
    try:
        period = market.period(start, end)
    except ValueError:
        period = None
    if period is None or str(period.dates[0])[:10] != start or str(period.dates[-1])[:10] != end:
        raise ManifestError(
            f"the model's test period is {start} to {end} ({trained.manifest_path}) but the "
            f"data covers {have}: backtest on data that includes the whole test period"
        )
    return period


@dataclass(frozen=True)
class BacktestReport:
    """What :func:`run_backtest` wrote and found.

    Attributes
    ----------
    model_path : Path
    test_start, test_end : str
        The period run, ISO dates (the manifest's test period).
    metrics : dict[str, dict[str, float]]
        ``{"strategy": {...}, "buy_and_hold": {...}, "cash": {...}}``, each with the
        :data:`~ploutos_core.metrics.METRIC_NAMES` and
        :data:`~ploutos_core.metrics.TRADE_STAT_NAMES` (``inf`` possible, see the conventions).
    paths : dict[str, Path]
        ``equity``, ``trades``, ``positions``, ``metrics``, ``equity_plot``.
    trade_plots : dict[str, Path]
        Ticker -> ``backtest_trades_<TICKER>.png``, most traded first.
    equity_thumbnail : bytes
        A small PNG of the equity figure for embedding (:func:`ploutos_core.plots.markdown_image`).
    table : str
        The Markdown table of :func:`format_metrics_table`.
    accounting_error : float
        Largest relative gap between equity and cash + holdings over both portfolios' bars.
    timings : dict[str, float]
        Seconds spent in ``load``, ``simulate``, ``metrics``, ``plots`` and ``write``.
    strategy, benchmark : BacktestRun
    """

    model_path: Path
    test_start: str
    test_end: str
    metrics: dict[str, dict[str, float]]
    paths: dict[str, Path]
    trade_plots: dict[str, Path]
    equity_thumbnail: bytes = field(repr=False)
    table: str
    accounting_error: float
    timings: dict[str, float]
    strategy: BacktestRun = field(repr=False)
    benchmark: BacktestRun = field(repr=False)

    @property
    def n_bars(self) -> int:
        """Number of bars in the test period."""
        return int(self.strategy.dates.size)

    def moved_to(self, directory: str | Path) -> BacktestReport:
        """This report with its file paths rebased onto ``directory``.

        For a report written into ``storage.atomic_dir``'s temporary directory, once that
        directory has been renamed to its final name.
        """
        directory = Path(directory)
        return replace(
            self,
            paths={key: directory / path.name for key, path in self.paths.items()},
            trade_plots={key: directory / path.name for key, path in self.trade_plots.items()},
        )

    def flat_metrics(self) -> dict[str, float]:
        """``{"<side>_<metric>": value}`` for every side and metric (e.g. for Dagster metadata)."""
        return {
            f"{side}_{name}": value
            for side, values in self.metrics.items()
            for name, value in values.items()
        }


_FORMATS: dict[str, tuple[str, str]] = {
    "total_return": ("Total return", "pct"),
    "cagr": ("CAGR", "pct"),
    "volatility": ("Volatility (annual)", "pct"),
    "sharpe": ("Sharpe", "ratio"),
    "sortino": ("Sortino", "ratio"),
    "max_drawdown": ("Max drawdown", "pct"),
    "calmar": ("Calmar", "ratio"),
    "n_trades": ("Trades (fills)", "count"),
    "n_closed_trades": ("Closed trades", "count"),
    "win_rate": ("Win rate (closed)", "pct"),
    "profit_factor": ("Profit factor", "ratio"),
    "average_exposure": ("Average exposure", "pct"),
    "annual_turnover": ("Turnover (annual)", "times"),
    "total_costs": ("Costs paid", "money"),
}


def _format_value(value: float, kind: str) -> str:
    if not np.isfinite(value):
        return "inf" if value > 0 else ("-inf" if value < 0 else "n/a")
    if kind == "pct":
        return f"{100 * value:.2f}%"
    if kind == "count":
        return f"{value:,.0f}"
    if kind == "times":
        return f"{value:.2f}x"
    if kind == "money":
        return f"{value:,.2f}"
    return f"{value:.2f}"


def format_metrics_table(report: BacktestReport | Mapping[str, Mapping[str, float]]) -> str:
    """Markdown table of every metric, strategy, buy & hold and cash side by side.

    Parameters
    ----------
    report:
        A :class:`BacktestReport`, or its ``metrics`` mapping (side -> metric -> value).
    """
    table = report.metrics if isinstance(report, BacktestReport) else report
    sides = [side for side in SIDES if side in table]
    lines = [
        "| Metric | " + " | ".join(SIDE_LABELS[s] for s in sides) + " |",
        "|---|" + "---:|" * len(sides),
    ]
    for name in (*METRIC_NAMES, *TRADE_STAT_NAMES):
        label, kind = _FORMATS[name]
        cells = [_format_value(float(table[side][name]), kind) for side in sides]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def most_traded(fills: pd.DataFrame, k: int) -> list[str]:
    """The ``k`` tickers with the most fills (ties by symbol)."""
    if k <= 0 or fills.empty:
        return []
    counts = fills["ticker"].astype(str).value_counts()
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [ticker for ticker, _ in ranked[:k]]


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, then restore the previous number."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def trades_plot_name(ticker: str) -> str:
    """File name of a ticker's trades figure."""
    return f"backtest_trades_{ticker}.png"


def run_backtest(
    model_path: str | Path,
    market: MarketData,
    config: BacktestConfig,
    output_dir: str | Path,
) -> BacktestReport:
    """Backtest a trained model over its manifest's test period and write the artifacts.

    Writes into ``output_dir`` (created if missing), each file atomically: ``equity.parquet``
    (per date: ``strategy_*`` and ``buy_and_hold_*`` equity, cash and gross exposure, and
    ``cash_equity``), ``trades.parquet`` (the strategy's fills), ``positions.parquet`` (the
    strategy's shares per ticker and date), ``metrics.json``, ``backtest_equity.png`` and
    ``backtest_trades_<TICKER>.png`` for the ``config.top_k`` most-traded tickers.

    Parameters
    ----------
    model_path:
        ``final_model.zip`` or a checkpoint inside a model directory.
    market:
        Market data including the whole test period, with the model's tickers and features.
    config:
        ``top_k`` trade figures; ``deterministic`` actions (else sampled, seeded with the
        manifest's seed).
    output_dir:
        Where the files go.

    Raises
    ------
    ManifestError
        When the data does not match the manifest or does not cover the test period.
    """
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    output_dir = Path(output_dir)
    trained = load_trained_model(model_path)
    check_manifest(trained.manifest, market, str(trained.manifest_path))
    test = _test_market(trained, market)
    env_config = trained.env_config
    if not config.deterministic:
        trained.model.set_random_seed(int(trained.manifest.get("seed", 0)))
    timings["load"] = time.perf_counter() - clock

    clock = time.perf_counter()
    with _torch_threads(INFERENCE_THREADS):
        strategy = simulate(test, env_config, trained.policy(config.deterministic))
    benchmark = buy_and_hold_benchmark(test, env_config)
    cash = cash_benchmark(test, env_config)
    timings["simulate"] = time.perf_counter() - clock

    clock = time.perf_counter()
    results = {"strategy": strategy.metrics(), "buy_and_hold": benchmark.metrics(),
               "cash": cash.metrics()}
    error = max(accounting_error(strategy, test), accounting_error(benchmark, test))
    table = format_metrics_table(results)
    timings["metrics"] = time.perf_counter() - clock

    clock = time.perf_counter()
    start, end = trained.test_period
    title = f"{trained.model_path.parent.name}/{trained.model_path.name}: test {start} to {end}"
    curves = {
        SIDE_LABELS["strategy"]: strategy.equity,
        SIDE_LABELS["buy_and_hold"] + " (equal weight)": benchmark.equity,
        SIDE_LABELS["cash"]: cash.equity,
    }
    images = {EQUITY_PLOT: plots.equity_png(test.dates, curves, title)}
    thumbnail = plots.equity_thumbnail_png(test.dates, curves, title)
    top = most_traded(strategy.fills, config.top_k)
    ticker_fills = strategy.fills.groupby("ticker", observed=True)
    for ticker in top:
        column = test.tickers.index(ticker)
        images[trades_plot_name(ticker)] = plots.trades_png(
            test.dates,
            test.close[:, column],
            ticker_fills.get_group(ticker),
            ticker,
            f"{ticker}: fills of {trained.model_path.name}, test {start} to {end}",
        )
    timings["plots"] = time.perf_counter() - clock

    clock = time.perf_counter()
    frames = [
        strategy.equity_frame().add_prefix("strategy_"),
        benchmark.equity_frame().add_prefix("buy_and_hold_"),
        cash.equity_frame()[["equity"]].add_prefix("cash_"),
    ]
    paths = {
        "equity": write_parquet_atomic(output_dir / EQUITY_FILE, pd.concat(frames, axis=1)),
        "trades": write_parquet_atomic(output_dir / TRADES_FILE, strategy.fills),
        "positions": write_parquet_atomic(output_dir / POSITIONS_FILE, strategy.positions_frame()),
    }
    written = {name: write_bytes_atomic(output_dir / name, png) for name, png in images.items()}
    paths["equity_plot"] = written[EQUITY_PLOT]
    trade_plots = {ticker: written[trades_plot_name(ticker)] for ticker in top}
    summary = {
        "model": str(trained.model_path),
        "test_period": {"start": start, "end": end, "bars": int(test.T)},
        "train_period": trained.manifest["train_period"],
        "deterministic": config.deterministic,
        "accounting_error": error,
        **results,
    }
    paths["metrics"] = write_json_atomic(output_dir / METRICS_FILE, json_safe(summary))
    timings["write"] = time.perf_counter() - clock

    return BacktestReport(
        model_path=trained.model_path,
        test_start=start,
        test_end=end,
        metrics=results,
        paths=paths,
        trade_plots=trade_plots,
        equity_thumbnail=thumbnail,
        table=table,
        accounting_error=error,
        timings=timings,
        strategy=strategy,
        benchmark=benchmark,
    )
