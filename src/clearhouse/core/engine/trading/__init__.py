"""Trading: resting orders, the one trade path, order commands and triggers."""
