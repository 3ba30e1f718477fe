"""Polling for a condition that a server or another process makes true."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for[T](
    condition: Callable[[], T], what: str, timeout: float = 300, interval: float = 0.5
) -> T:
    """Return ``condition()``'s value once it is true; raise ``TimeoutError`` naming ``what``
    after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
