"""The cost answer's inputs: prices, the traffic profile and the dated data files."""
