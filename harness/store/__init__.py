"""The results directory: atomic writes, resume, the requests file, validation."""
