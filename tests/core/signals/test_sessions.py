"""The session an order fills in after the last bar."""

from __future__ import annotations

import numpy as np

from ploutos_core.signals.sessions import next_session


def _days(*days: str) -> np.ndarray:
    return np.array(days, dtype="datetime64[ns]")


def test_an_order_fills_at_the_next_bar_or_else_the_next_weekday() -> None:
    weekdays = _days("2024-05-29", "2024-05-30", "2024-05-31")  # Wednesday to Friday
    assert next_session(weekdays, 0) == "2024-05-30"
    assert next_session(weekdays, 2) == "2024-06-03"  # Friday -> Monday
    crypto = _days("2024-06-01", "2024-06-02")  # Saturday, Sunday: the data trades weekends
    assert next_session(crypto, 1) == "2024-06-03"
    assert next_session(_days("2024-05-31", "2024-06-01"), 1) == "2024-06-02"
