"""Typed models of everything stored or handed between layers, one schema version."""
