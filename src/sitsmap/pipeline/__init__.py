"""The chain: output layout, steps, the task graph and how to run it."""
