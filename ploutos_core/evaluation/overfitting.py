"""Probability of Backtest Overfitting (PBO) by combinatorially symmetric cross-validation.

D. H. Bailey, J. M. Borwein, M. López de Prado and Q. J. Zhu, "The Probability of Backtest
Overfitting", *Journal of Computational Finance* 20(4), 2017 (SSRN 2326253, 2015).

Given the out-of-sample returns of every trial (every configuration tried on one dataset), CSCV
cuts time into ``S`` blocks and, for each of the ``C(S, S/2)`` ways of choosing half of them,
picks the trial with the best Sharpe ratio on the chosen half ("in sample") and ranks it among
all trials on the other half ("out of sample"). The PBO is the share of choices in which the
in-sample winner ranks at or below the out-of-sample median: selecting by backtest then does no
better than picking at random.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ploutos_core.evaluation.sharpe import FLAT_TOLERANCE


@dataclass(frozen=True)
class OverfittingEstimate:
    """The PBO and its logits ``log(w / (1 - w))``, one per combination, where ``w`` is the
    relative out-of-sample rank ``rank / (N + 1)`` of the in-sample best trial."""

    pbo: float
    logits: tuple[float, ...]
    n_trials: int
    n_submatrices: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "pbo": self.pbo,
            "logits": list(self.logits),
            "n_trials": self.n_trials,
            "n_submatrices": self.n_submatrices,
        }


def probability_of_backtest_overfitting(
    returns: np.ndarray, n_submatrices: int = 16
) -> OverfittingEstimate | None:
    """CSCV estimate of the PBO of selecting the best of the ``returns`` columns by Sharpe ratio.

    Parameters
    ----------
    returns:
        ``[time, trials]`` per-bar out-of-sample returns, one column per trial, aligned in time.
    n_submatrices:
        ``S``, even: the number of contiguous blocks of rows (nearly equal; ``np.array_split``).
        The paper uses 16 (12,870 combinations).

    Returns
    -------
    The estimate, or ``None`` with fewer than 2 trials: one trial involves no selection, so
    there is nothing to overfit by choosing.
    """
    from scipy import stats

    m = np.asarray(returns, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"returns must be a [time, trials] matrix, got shape {m.shape}")
    if not np.all(np.isfinite(m)):
        raise ValueError("returns must be finite")
    n_time, n_trials = m.shape
    if n_trials < 2:
        return None
    if n_submatrices < 2 or n_submatrices % 2:
        raise ValueError(f"n_submatrices must be even and >= 2, got {n_submatrices}")
    if n_time < 2 * n_submatrices:
        raise ValueError(
            f"{n_time} rows cannot form {n_submatrices} blocks of at least 2 returns each; "
            "lower n_submatrices or supply longer return series"
        )
    blocks = np.array_split(m, n_submatrices)
    counts = np.array([len(b) for b in blocks], dtype=np.float64)
    sums = np.stack([b.sum(axis=0) for b in blocks])
    squares = np.stack([(b**2).sum(axis=0) for b in blocks])
    chosen = np.zeros((math.comb(n_submatrices, n_submatrices // 2), n_submatrices))
    for row, combo in enumerate(itertools.combinations(range(n_submatrices), n_submatrices // 2)):
        chosen[row, list(combo)] = 1.0
    in_sample = _sharpe(chosen @ sums, chosen @ squares, chosen @ counts)
    out_sample = _sharpe((1 - chosen) @ sums, (1 - chosen) @ squares, (1 - chosen) @ counts)
    best = np.argmax(in_sample, axis=1)
    ranks = stats.rankdata(out_sample, axis=1)[np.arange(len(best)), best]
    omega = ranks / (n_trials + 1)
    logits = np.log(omega / (1 - omega))
    return OverfittingEstimate(
        pbo=float(np.mean(logits <= 0)),
        logits=tuple(float(x) for x in logits),
        n_trials=n_trials,
        n_submatrices=n_submatrices,
    )


def _sharpe(sums: np.ndarray, squares: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per-period Sharpe ratios (ddof=1) from each trial's sums and sums of squares; 0 where a
    trial is flat (as :func:`~ploutos_core.evaluation.sharpe.sharpe_ratio` decides it)."""
    n = counts[:, None]
    mean = sums / n
    variance = np.maximum((squares - sums * mean) / (n - 1), 0.0)
    std = np.sqrt(variance)
    flat = std <= FLAT_TOLERANCE * np.sqrt(squares / n)
    return np.divide(mean, std, out=np.zeros_like(mean), where=~flat)
