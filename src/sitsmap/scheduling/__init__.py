"""Task-graph execution on Dask: schedulers, resume records, retries."""
