"""Stage 3, evaluate: thresholds (quantile, SPOT), metrics, plots and the ``evaluate``
command."""
