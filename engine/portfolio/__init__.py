"""Portfolio targets: reading what the user wants to hold, and planning the trades to get there."""
