"""The statistics of the verdict: is an agent better than its baselines, and can that be
trusted? Pure NumPy/SciPy; no training, no Dagster. ``scipy.stats`` is imported by the
functions that use it: every Dagster process imports these modules with the code location.

- :mod:`.folds`: walk-forward and combinatorial purged folds over the trading dates
  (:func:`make_folds`, :func:`walk_forward_folds`, :func:`combinatorial_purged_folds`,
  :func:`cpcv_paths`)
- :mod:`.sharpe`: Probabilistic and Deflated Sharpe Ratios (Bailey & López de Prado 2012, 2014)
- :mod:`.overfitting`: Probability of Backtest Overfitting by CSCV (Bailey et al. 2015)
- :mod:`.aggregate`: IQM, stratified bootstrap intervals, probability of improvement and
  performance profiles over folds x seeds (Agarwal et al. 2021)
- :mod:`.trials`: the registry of every configuration tried on a dataset (the DSR's N, the
  PBO's matrix)
- :mod:`.gate`: :func:`promotion_decision` against ``GateConfig``'s thresholds
- :mod:`.promotion`: ``promotion.json``, the record that a model passed the gate (imported from
  its module: it reads model directories)
- :mod:`.plots` and :mod:`.report`: the verdict's figures and ``report.html`` (imported from
  their modules: they need matplotlib and the fold results of :mod:`.run`)

Settings: :class:`ploutos_core.config.EvaluationConfig` (``config/evaluation.yaml``).
"""

from ploutos_core.evaluation.aggregate import (
    Comparison,
    IntervalEstimate,
    PerformanceProfile,
    compare_to_baselines,
    interquartile_mean,
    iqm_difference_interval,
    iqm_interval,
    performance_profile,
    probability_of_improvement,
    probability_of_improvement_interval,
)
from ploutos_core.evaluation.folds import (
    Fold,
    combinatorial_purged_folds,
    cpcv_paths,
    make_folds,
    walk_forward_folds,
)
from ploutos_core.evaluation.gate import VerdictValues, promotion_decision
from ploutos_core.evaluation.overfitting import (
    OverfittingEstimate,
    probability_of_backtest_overfitting,
)
from ploutos_core.evaluation.sharpe import (
    deflated_sharpe_ratio,
    deflated_sharpe_ratio_of,
    expected_maximum_sharpe,
    probabilistic_sharpe_ratio,
    probabilistic_sharpe_ratio_of,
    sharpe_ratio,
)
from ploutos_core.evaluation.trials import TrialRegistry, trial_key

__all__ = [
    "Comparison",
    "Fold",
    "IntervalEstimate",
    "OverfittingEstimate",
    "PerformanceProfile",
    "TrialRegistry",
    "VerdictValues",
    "combinatorial_purged_folds",
    "compare_to_baselines",
    "cpcv_paths",
    "deflated_sharpe_ratio",
    "deflated_sharpe_ratio_of",
    "expected_maximum_sharpe",
    "interquartile_mean",
    "iqm_difference_interval",
    "iqm_interval",
    "make_folds",
    "performance_profile",
    "probabilistic_sharpe_ratio",
    "probabilistic_sharpe_ratio_of",
    "probability_of_backtest_overfitting",
    "probability_of_improvement",
    "probability_of_improvement_interval",
    "promotion_decision",
    "sharpe_ratio",
    "trial_key",
    "walk_forward_folds",
]
