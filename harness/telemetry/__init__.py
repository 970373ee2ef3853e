"""Measurements beside the load: engine-side Prometheus metrics (and, later, NVML energy)."""
