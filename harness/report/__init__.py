"""Turning stored results into tables (and the live progress display of a run)."""
