"""The paper ledger and the orders: the backtest's decisions and execution, session by session."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ploutos_core.artifacts import load_trained_model
from ploutos_core.backtest.simulate import simulate
from ploutos_core.config import PaperConfig
from ploutos_core.data import load_ohlcv
from ploutos_core.errors import DataError
from ploutos_core.market import build_market
from ploutos_core.market.dates import iso_day
from ploutos_core.signals import decide_orders, run_paper, write_session
from ploutos_core.signals.ledger import session_path
from tests.core.conftest import FEATURES, TinyModel

CONFIG = PaperConfig()
PAPER_SESSIONS = 30


@pytest.fixture(scope="module")
def trained(tiny_model: TinyModel):
    return load_trained_model(tiny_model.result.model_path)


def _start(tiny_model: TinyModel) -> str:
    """The paper start: a bar of the test period, PAPER_SESSIONS bars before the data's end."""
    return iso_day(tiny_model.market.dates[-1 - PAPER_SESSIONS])


def _recorded_backtest(trained, tiny_model: TinyModel):
    """One backtest from the paper start over all the data, and the actions on every bar."""
    policy = trained.policy(True)
    actions: list[np.ndarray] = []

    def recording(obs: np.ndarray) -> np.ndarray:
        actions.append(np.asarray(policy(obs)).reshape(-1))
        return actions[-1]

    period = tiny_model.market.period(_start(tiny_model), None)
    return period, simulate(period, trained.env_config, recording), actions


def _without_bars(market, ticker: int, days: slice):
    """``market`` with no bar of ``ticker`` on ``days`` (untradable, features 0)."""
    tradable, features = market.tradable.copy(), market.features.copy()
    tradable[days, ticker] = False
    features[days, ticker] = 0.0
    return type(market)(
        market.dates, market.tickers, market.feature_names, features, market.open, market.close,
        tradable, market.feature_version,
    )  # fmt: skip


def test_the_signal_on_bar_t_is_the_backtests_order_on_bar_t(
    tiny_model: TinyModel, trained
) -> None:
    period, run, actions = _recorded_backtest(trained, tiny_model)
    checked = 0
    for t in (0, 1, 2, 7, 20, period.T // 2, period.T - 2):
        ledger = run_paper(
            trained, tiny_model.market.period(None, period.dates[t]), _start(tiny_model), CONFIG
        )
        if ledger.settlement.last_settled != t:
            continue  # a ticker is late on bar t: no orders (tested below)
        orders = decide_orders(trained, ledger).set_index("ticker").loc[list(period.tickers)]
        decided = np.array(["hold", "buy", "sell"])[actions[t]]
        assert list(orders["action"]) == list(decided)
        assert np.allclose(orders["shares"], run.positions[t], rtol=0, atol=1e-9)
        probs = orders[["p_hold", "p_buy", "p_sell"]].to_numpy()
        assert np.allclose(probs.sum(axis=1), 1.0)
        assert (probs.argmax(axis=1) == actions[t]).all()
        assert set(orders["bar_date"]) == {iso_day(period.dates[t])}
        sells = (orders["action"] == "sell") & orders["tradable"]
        assert (orders.loc[sells, "target_weight"] == 0.0).all()
        assert (orders.loc[orders["action"] == "hold", "order"] == "none").all()
        checked += 1
    assert checked >= 5


def test_a_ledger_booked_one_session_at_a_time_equals_one_backtest(
    tiny_model: TinyModel, trained, tmp_path: Path
) -> None:
    period, run, _ = _recorded_backtest(trained, tiny_model)
    booked: dict[str, dict] = {}
    for t in range(1, period.T):
        ledger = run_paper(
            trained, tiny_model.market.period(None, period.dates[t]), _start(tiny_model), CONFIG
        )
        for session in ledger.sessions:
            status = write_session(tmp_path, ledger.session_record(session))
            assert status == ("unchanged" if session in booked else "new")
            booked[session] = json.loads(session_path(tmp_path, session).read_text())
    days = [iso_day(d) for d in period.dates]
    assert list(booked) == days[1 : len(booked) + 1]
    assert len(booked) >= period.T - 1 - CONFIG.stopped_after_sessions
    equity = np.array([booked[d]["equity"] for d in booked])
    assert np.allclose(equity, run.equity[1 : len(booked) + 1], rtol=1e-12, atol=1e-9)
    for i, day in enumerate(booked, start=1):
        held = {t: q for t, q in zip(period.tickers, run.positions[i], strict=True) if q}
        assert booked[day]["positions"].keys() == held.keys()
        assert np.allclose(list(booked[day]["positions"].values()), list(held.values()))
        assert len(booked[day]["fills"]) == int((run.fills["date"] == period.dates[i]).sum())


def test_sessions_after_a_late_bar_wait_and_are_reported(tiny_model: TinyModel, trained) -> None:
    market = tiny_model.market.period(_start(tiny_model), None)
    cut = market.period(None, market.dates[10])
    late = cut.tickers[0]
    waiting = _without_bars(cut, 0, slice(-1, None))  # its bar of the last day has not arrived
    ledger = run_paper(trained, waiting, _start(tiny_model), CONFIG)
    assert ledger.settlement.late == {late: iso_day(cut.dates[-2])}
    assert ledger.sessions[-1] == iso_day(cut.dates[-2])
    with pytest.raises(DataError, match=f"{late} \\(last bar {iso_day(cut.dates[-2])}\\)"):
        ledger.session_record(iso_day(cut.dates[-1]))
    with pytest.raises(DataError, match="no orders for the session after"):
        decide_orders(trained, ledger)
    with pytest.raises(DataError, match="has no session 2099-01-01"):
        ledger.session_record("2099-01-01")


def test_a_bar_given_twice_or_out_of_order_books_the_same_sessions(
    tiny_model: TinyModel, trained, tmp_path: Path
) -> None:
    end = tiny_model.market.period(_start(tiny_model), None).dates[12]
    rows = tiny_model.ohlcv[tiny_model.ohlcv["date"] <= end]
    clean, messy = tmp_path / "clean.csv", tmp_path / "messy.csv"
    rows.to_csv(clean, index=False, date_format="%Y-%m-%d")
    last_day = rows[rows["date"] == end]
    again = pd.concat([rows, last_day]).sample(frac=1.0, random_state=0)  # twice, out of order
    again.to_csv(messy, index=False, date_format="%Y-%m-%d")

    def ledger_of(path: Path):
        ohlcv = load_ohlcv(path)
        features = {t: f[f.index <= end] for t, f in tiny_model.features.items()}
        market = build_market(features, ohlcv, feature_names=FEATURES)
        return run_paper(trained, market, _start(tiny_model), CONFIG)

    expected, got = ledger_of(clean), ledger_of(messy)
    assert got.sessions == expected.sessions and len(got.sessions) >= 8
    for session in reversed(got.sessions):  # booked in any order, each once
        assert write_session(tmp_path / "book", got.session_record(session)) == "new"
        assert write_session(tmp_path / "book", expected.session_record(session)) == "unchanged"
    assert len(list((tmp_path / "book" / "sessions").iterdir())) == len(got.sessions)


def test_a_changed_bar_of_a_booked_session_is_reported_as_restated(
    tiny_model: TinyModel, trained, tmp_path: Path
) -> None:
    ledger = run_paper(trained, tiny_model.market, _start(tiny_model), CONFIG)
    session = ledger.sessions[3]
    record = ledger.session_record(session)
    assert write_session(tmp_path, record) == "new"
    assert write_session(tmp_path, {**record, "equity": record["equity"] * 1.01}) == "restated"
    assert json.loads(session_path(tmp_path, session).read_text())["equity"] != record["equity"]


def test_the_paper_start_must_be_a_bar_of_the_data(tiny_model: TinyModel, trained) -> None:
    with pytest.raises(DataError, match="starts on the bar of 2099-01-04"):
        run_paper(trained, tiny_model.market, "2099-01-04", CONFIG)


def test_a_ticker_counted_as_stopped_that_trades_again_restates_the_gap(
    tiny_model: TinyModel, trained, tmp_path: Path
) -> None:
    """No bar of a ticker for more than ``stopped_after_sessions``: it counts as stopped (its
    position closed at its last close, like the backtest's delisting). When its bars resume, the
    gap was missing days: the replay holds it through them, and the booked sessions of the gap
    that change are reported as restated, never silently rewritten."""
    market = tiny_model.market.period(_start(tiny_model), None)
    gap = slice(6, 16)  # ten sessions without a bar, then bars again
    resumed = _without_bars(market.period(None, market.dates[20]), 0, gap)
    before = resumed.period(None, resumed.dates[15])
    assert CONFIG.stopped_after_sessions < gap.stop - gap.start

    stopped = run_paper(trained, before, _start(tiny_model), CONFIG)
    assert stopped.settlement.late == {}  # counted as stopped, so nothing waits
    assert stopped.sessions[-1] == iso_day(before.dates[-1])
    assert not stopped.run.positions[-1, 0]  # closed at its last close
    book = tmp_path / "book"
    for session in stopped.sessions:
        assert write_session(book, stopped.session_record(session)) == "new"

    returned = run_paper(trained, resumed, _start(tiny_model), CONFIG)
    backtest = simulate(resumed, trained.env_config, trained.policy(True))
    np.testing.assert_array_equal(returned.run.equity, backtest.equity)
    statuses = {s: write_session(book, returned.session_record(s)) for s in returned.sessions}
    gap_sessions = [iso_day(d) for d in resumed.dates[gap]]
    assert all(statuses[s] == "new" for s in returned.sessions[len(stopped.sessions) :])
    assert all(statuses[s] == "unchanged" for s in stopped.sessions if s < gap_sessions[0])
    assert stopped.run.positions[gap.start - 1, 0] > 0  # held when its bars stopped
    assert {s for s in gap_sessions if statuses[s] == "restated"} == set(gap_sessions)
    assert all(t == resumed.tickers[0] for s in gap_sessions for t in
               returned.session_record(s)["missing"])  # fmt: skip
