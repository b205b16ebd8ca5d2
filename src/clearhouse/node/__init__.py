"""The node: a single-writer sequencer with durable group commit, and the API that serves it."""
