"""Batch jobs of the local backend: job service and store, job logs, state files, dask cluster and supervision."""
