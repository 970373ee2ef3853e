"""Orchestration: the runner, the point measurer, the capacity search, the fidelity pass,
provenance and the client self-test."""
