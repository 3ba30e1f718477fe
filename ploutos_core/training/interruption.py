"""Interruption: SIGTERM becomes an exception in the training thread, so ``train`` can save the
interrupted model before the process ends (Ctrl+C already raises ``KeyboardInterrupt``), and no
interruption lands in the middle of writing a model file. A stop asked for by other means than a
signal (a terminated Dagster run seen by :class:`~ploutos_core.training.callbacks.StopWhenAsked`)
raises the same exception.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class TrainingInterrupted(KeyboardInterrupt):
    """Raised in the training thread when SIGTERM arrives or a stop is asked for.

    ``signum`` is the signal received, or SIGTERM (what a terminated process would get) when
    ``reason`` names another cause.
    """

    def __init__(self, signum: int = signal.SIGTERM, reason: str | None = None) -> None:
        super().__init__(reason or f"received signal {signal.Signals(signum).name}")
        self.signum = signum


class StopRequested(TrainingInterrupted):
    """Raised by :class:`~ploutos_core.training.callbacks.StopWhenAsked`: a stop asked for
    without a signal, so the caller knows its process is not being terminated."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason=reason)


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Turn SIGTERM into :class:`TrainingInterrupted` while training, in the main thread.

    An existing handler (Dagster's run worker installs its own) is left alone: it already turns
    termination into an exception that ``train`` treats as an interruption.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def raise_interrupt(signum: int, frame: object) -> None:
        raise TrainingInterrupted(signum)

    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


DEFERRED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, so that a save is never cut in half.

    A termination raised while torch writes a model file surfaces from its C++ zip writer as a
    plain ``RuntimeError`` ("unexpected pos"), which would look like a failure instead of an
    interruption and leave no interrupted model. During the block a handler only notes the
    signal; afterwards the previous handlers (Dagster's, ours, Python's Ctrl+C) are back and the
    noted signals are raised again, where the interruption is handled as usual. Python runs
    signal handlers in the main thread only, whichever thread the signal reached, so elsewhere
    the block runs as is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def note(signum: int, frame: object) -> None:
        pending.append(signum)

    previous = {signum: signal.signal(signum, note) for signum in DEFERRED_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        for signum in dict.fromkeys(pending):
            signal.raise_signal(signum)
