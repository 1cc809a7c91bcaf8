"""``python -m cfanalytics.analysis``: a worker process of the embedded engine."""

from ._workers import serve

serve()
