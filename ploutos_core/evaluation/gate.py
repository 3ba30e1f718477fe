"""The promotion gate: an agent is promoted only if every criterion of ``GateConfig`` holds.

The criteria, and why each:

- ``excess_sharpe_ci_low >= excess_sharpe_ci_low_min``: the lower end of the confidence interval
  of the agent's IQM Sharpe ratio minus the best baseline's (:mod:`.aggregate`): better than the
  best simple strategy even in an unlucky draw of seeds;
- ``dsr >= dsr_min``: the Deflated Sharpe Ratio (:mod:`.sharpe`): the Sharpe ratio survives
  the number of configurations tried;
- ``pbo <= pbo_max``: the Probability of Backtest Overfitting (:mod:`.overfitting`); skipped,
  and said so, when there is no PBO (fewer than two trials);
- ``probability_of_improvement[b] >= prob_improvement_min`` for every baseline ``b``
  (point estimates, :mod:`.aggregate`): the agent beats each baseline on most fold x seed pairs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ploutos_core.config import GateConfig
from ploutos_core.evaluation.aggregate import Comparison
from ploutos_core.evaluation.overfitting import OverfittingEstimate


@dataclass(frozen=True)
class VerdictValues:
    """The statistics the gate reads."""

    excess_sharpe_ci_low: float
    dsr: float
    pbo: float | None
    probability_of_improvement: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_results(
        cls, comparison: Comparison, dsr: float, overfitting: OverfittingEstimate | None
    ) -> VerdictValues:
        """The values of a :func:`~.aggregate.compare_to_baselines` result of Sharpe-ratio
        scores, a DSR and a PBO estimate (``None``: fewer than two trials)."""
        return cls(
            excess_sharpe_ci_low=comparison.excess_iqm.ci_low,
            dsr=dsr,
            pbo=None if overfitting is None else overfitting.pbo,
            probability_of_improvement={
                name: e.point for name, e in comparison.probability_of_improvement.items()
            },
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "excess_sharpe_ci_low": self.excess_sharpe_ci_low,
            "dsr": self.dsr,
            "pbo": self.pbo,
            "probability_of_improvement": dict(self.probability_of_improvement),
        }


def promotion_decision(values: VerdictValues, thresholds: GateConfig) -> tuple[bool, list[str]]:
    """Whether to promote, and a reason for every criterion that failed or was skipped.

    A failed criterion names the statistic, its value, the threshold and the shortfall, e.g.
    ``"DSR 0.81 < 0.95 (short by 0.14)"``. The PBO criterion is skipped when ``values.pbo``
    is ``None``, with a reason saying it is not applicable; a skipped criterion does not block.
    """
    failures = []
    minimums = [
        ("excess Sharpe CI low", values.excess_sharpe_ci_low, thresholds.excess_sharpe_ci_low_min),
        ("DSR", values.dsr, thresholds.dsr_min),
    ] + [
        (f"probability of improvement over {name}", p, thresholds.prob_improvement_min)
        for name, p in sorted(values.probability_of_improvement.items())
    ]
    for name, value, minimum in minimums:
        if value < minimum:
            v, t, gap = _numbers(value, minimum)
            failures.append(f"{name} {v} < {t} (short by {gap})")
    skipped = []
    if values.pbo is None:
        skipped.append("PBO not applicable (fewer than 2 trials on this data): criterion skipped")
    elif values.pbo > thresholds.pbo_max:
        v, t, gap = _numbers(values.pbo, thresholds.pbo_max)
        failures.append(f"PBO {v} > {t} (over by {gap})")
    return not failures, failures + skipped


def _numbers(value: float, threshold: float) -> tuple[str, str, str]:
    """Value, threshold and gap with the fewest decimals (2 to 6) that tell value and
    threshold apart, so a near miss never reads "0.95 < 0.95"."""
    for decimals in range(2, 7):
        v, t = f"{value:.{decimals}f}", f"{threshold:.{decimals}f}"
        if v != t:
            break
    return v, t, f"{abs(threshold - value):.{decimals}f}"
