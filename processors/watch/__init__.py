"""Watching a pipeline from outside: status, the dashboard, Prometheus, the CSV tail. Only reads."""
