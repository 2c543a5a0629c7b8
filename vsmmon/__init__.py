"""vsmmon: a Viable System Model monitoring pipeline for Celery worker fleets."""

__version__ = "0.1.0"
