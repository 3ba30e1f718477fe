"""Tests of the worker-process map behind compute_features_many: order, completeness, errors."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from ploutos_core.features.parallel import _Claims, compute_in_workers


def test_claims_hand_out_every_index_once_from_both_ends() -> None:
    claims = _Claims(1000)
    taken: list[list[int]] = [[], [], []]

    def front(out: list[int]) -> None:
        while (chunk := claims.take_front(7)) is not None:
            out.extend(chunk)

    def back(out: list[int]) -> None:
        while (i := claims.take_last()) is not None:
            out.append(i)

    threads = [
        threading.Thread(target=front, args=(taken[0],)),
        threading.Thread(target=front, args=(taken[1],)),
        threading.Thread(target=back, args=(taken[2],)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(i for out in taken for i in out) == list(range(1000))


def test_claims_hand_out_nothing_after_an_error() -> None:
    claims = _Claims(10)
    assert claims.take_front(3) == range(0, 3)
    assert claims.take_last() == 9
    with pytest.raises(RuntimeError), claims.closed_on_error():
        raise RuntimeError("the pool cannot start")
    assert claims.take_front(3) is None
    assert claims.take_last() is None


def test_results_come_back_in_input_order() -> None:
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(5, int(n))) for n in rng.integers(1, 50, size=40)]
    results = compute_in_workers(np.cumsum, arrays, workers=2)
    assert len(results) == len(arrays)
    for values, result in zip(arrays, results, strict=True):
        np.testing.assert_array_equal(result, np.cumsum(values))


def test_an_error_in_any_ticker_is_raised() -> None:
    """``np.linalg.inv`` of a non-square array raises, in a worker or in this process alike."""
    arrays = [np.eye(3) for _ in range(30)] + [np.ones((5, 3))] + [np.eye(3) for _ in range(30)]
    with pytest.raises(np.linalg.LinAlgError):
        compute_in_workers(np.linalg.inv, arrays, workers=2)
