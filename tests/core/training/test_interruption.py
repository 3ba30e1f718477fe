"""Interruptions wait while a model file is written, then arrive as usual."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from ploutos_core.training.interruption import interrupts_deferred


@pytest.mark.parametrize(
    ("signum", "expected"), [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, SystemExit)]
)
def test_a_signal_during_a_save_arrives_after_it(signum: int, expected: type) -> None:
    def raise_exit(number: int, frame: object) -> None:
        raise SystemExit(number)

    # The handlers a training process has (a background shell may start pytest with SIGINT
    # ignored), restored afterwards.
    previous = {
        signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
        signal.SIGTERM: signal.signal(signal.SIGTERM, raise_exit),
    }
    steps = []
    try:
        with pytest.raises(expected):
            with interrupts_deferred():
                os.kill(os.getpid(), signum)
                steps.append("saved")  # the whole block runs despite the signal
            steps.append("after")  # never reached: the signal is delivered on leaving the block
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    assert steps == ["saved"]


def test_outside_the_main_thread_the_block_runs_unchanged() -> None:
    ran = []

    def work() -> None:
        with interrupts_deferred():
            ran.append(True)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert ran == [True]
