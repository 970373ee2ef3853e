"""What the measurements mean: point metrics, quantiles, the SLO evaluator, the steady
window and fidelity scoring, each defined once and read from the stored requests."""
