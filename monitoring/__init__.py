"""Back-testing decided loans against their outcomes: ``loanrisk monitor``.

Reads the audit database (decisions, outcomes, shadow scores) through the table definitions of
:mod:`service.audit.schema`, and registered versions through :mod:`models.registered`. It sits
above ``service`` (as ``cli`` does): the service never imports it, and ``training`` imports neither.

- :mod:`~monitoring.stats`: DeLong's AUC variance and paired test, KS, bootstrap intervals,
  calibration per band;
- :mod:`~monitoring.backtest`: decisions and outcomes per model version and window, the checks
  and their thresholds;
- :mod:`~monitoring.compare`: a champion against a challenger on the applicants both scored;
- :mod:`~monitoring.report`: the markdown report, the figure, the MLflow run.
"""
