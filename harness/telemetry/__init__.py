"""Measurements beside the load: GPU and CPU energy in one window (monitor.py), and the
engine's own Prometheus metrics (server_metrics.py)."""
