"""Fixtures shared by every test: tiny synthetic markets built in code and a CSV writer."""

from __future__ import annotations

import gzip
import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from ploutos_core.data.sample import make_market
from ploutos_core.paths import PROJECT_ROOT

# Set before any test module imports pandas-ta (numba) or matplotlib.
os.environ.setdefault("NUMBA_CACHE_DIR", str(PROJECT_ROOT / "storage" / "numba_cache"))
os.environ.setdefault("MPLBACKEND", "Agg")

WriteCsv = Callable[..., Path]


@pytest.fixture
def tiny_ohlcv() -> pd.DataFrame:
    """5 tickers x 400 business days: one lists late, one delists, one misses a few days."""
    return make_market(5, 400, seed=7)


@pytest.fixture
def write_csv(tmp_path: Path) -> WriteCsv:
    """``write_csv(content, name="prices.csv") -> Path`` in the test's temporary directory.

    ``content`` is CSV text (dedented), raw bytes, or a long OHLCV frame. A name ending in
    ``.gz`` is gzip-compressed.
    """

    def write(content: str | bytes | pd.DataFrame, name: str = "prices.csv") -> Path:
        if isinstance(content, pd.DataFrame):
            data = content.to_csv(index=False, date_format="%Y-%m-%d").encode()
        elif isinstance(content, str):
            data = textwrap.dedent(content).lstrip("\n").encode()
        else:
            data = content
        if name.endswith(".gz"):
            data = gzip.compress(data, mtime=0)
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return write


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny networks gain nothing from a second thread, and lose a lot on a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The cluster module, then the other slow tests (training, servers): with ``make test``'s
    two workers, the long ones start at once instead of one of them finishing alone at the end."""
    items.sort(
        key=lambda item: (
            item.get_closest_marker("cluster") is None,
            item.get_closest_marker("slow") is None,
        )
    )
