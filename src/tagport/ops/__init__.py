"""The operator's view: Prometheus metrics, health and readiness, structured logs."""
