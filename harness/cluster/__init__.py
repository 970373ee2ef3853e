"""A sweep on a Ray cluster: each cell one Ray task on the node that holds its GPUs, results
streamed back into the driver's results directory (harness run CONFIG --ray ADDRESS)."""
