"""Engines start and stop an OpenAI-compatible server; they know nothing about metrics.
registry.py lists the kinds; base.py is what every kind is."""
