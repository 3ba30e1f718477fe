"""Imported once by the forkserver that starts :func:`compute_features_many`'s workers.

Importing this module loads pandas-ta and runs the registry on a short synthetic series, which
loads pandas-ta's numba kernels from ``NUMBA_CACHE_DIR`` (or compiles them, when the cache is
empty) once, in the server. Every worker forked from the server then starts with them ready,
instead of each loading or compiling them again.

Last, everything loaded so far is moved to the collector's permanent generation
(``gc.freeze``): the workers' full garbage collections then skip the hundreds of thousands of
objects that pandas, numba and pandas-ta create at import, which made a 500-ticker run 2-3% slower.
"""

import gc

import numpy as np

from ploutos_core.features.compute import WARMUP_BARS, feature_matrix

_bars = WARMUP_BARS + 20
_close = 100 * np.exp(np.sin(np.arange(_bars) / 7) / 10)
feature_matrix(np.vstack([_close, _close * 1.01, _close * 0.99, _close, np.full(_bars, 1e6)]))
gc.freeze()
