"""The report of stored runs."""
