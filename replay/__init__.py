"""Historical data loaders, the simulated exchange, the replay harness and the cost report."""
