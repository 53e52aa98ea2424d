"""Statistical core of the drift monitor: the public entry points of this package.

Pure numpy / scipy / pandas; nothing here imports from the rest of specloop.

Test selection mirrors Evidently's data-drift defaults:

========================  ==============================  ==============================
column                    reference rows <= small_sample  reference rows > small_sample
========================  ==============================  ==============================
numeric                   Kolmogorov-Smirnov (p < 0.05)   Wasserstein / std (>= 0.1)
categorical, <= 2 values  proportions Z-test (p < 0.05)   Jensen-Shannon (>= 0.1)
categorical, > 2 values   chi-square (p < 0.05)           Jensen-Shannon (>= 0.1)
========================  ==============================  ==============================

A numeric column with at most 5 distinct values (reference and current
together) is tested like a categorical one, again as Evidently does.  The
population stability index (PSI) is computed for every column in addition to
the selected test.

Missing values (NaN/None, and +-inf for numeric columns) are dropped per
column before testing; the number dropped from the current data is reported.

The modules behind it, one concept each:

- ``_sorted``: vectorized helpers on sorted samples (Wasserstein in one pass, quantile bins);
- ``_prepare``: column preparation (types, missing values, sorted samples, category counts);
- ``_significance`` and ``_distances``: the p-value tests and the distances;
- ``_methods``: method names, default thresholds, the automatic choice, dispatch;
- ``_verdict`` and ``_dataset``: a column's result and the data-set verdict.
"""

from __future__ import annotations

from ._verdict import column_drift
from ._dataset import dataset_drift
from ._methods import DEFAULT_THRESHOLDS, METHODS

__all__ = [
    "DEFAULT_THRESHOLDS",
    "METHODS",
    "column_drift",
    "dataset_drift",
]
