"""Machine learning behind the ``ml.*`` actions: lead scoring, churn risk, and their learning loop.

Modules, one job each:

- ``spec``, ``contracts``: plain pydantic data (training spec, feature schema, metrics, action I/O)
- ``examples``: the shipped lead (X Education) and churn (IBM Telco) data sets
- ``roles``, ``data``, ``features``: read a labelled table, infer column roles, split, encode
- ``automl``: the ``AutoMLEngine`` interface (FLAML; auto-sklearn where it installs; baseline)
- ``training``, ``metrics``: fit and measure on held-out rows (ROC AUC, PR AUC, Brier, ECE)
- ``artifacts``, ``tables``, ``registry``: skops model files with checksums, and the registry
- ``scoring``, ``fastpath``, ``serving``: scores with reasons, and the per-process model cache
- ``outcomes``, ``promotion``: the learning loop (labels from outcomes, champion vs challenger)
- ``actions``, ``cli``: the ``ml.*`` actions and the ``circuit-os ml`` commands

Importing this package (or ``actions``) loads no scikit-learn, pandas, FLAML or Celery.
"""
