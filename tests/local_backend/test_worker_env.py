"""The local dask workers run one BLAS/torch thread each and without dask's MALLOC_TRIM_THRESHOLD_ (docs/speed.md)."""

import os

from local_backend.jobs.cluster import WORKER_ENVIRON, start_local_cluster


def _environ() -> dict[str, str | None]:
    import torch

    return {"MALLOC_TRIM_THRESHOLD_": os.environ.get("MALLOC_TRIM_THRESHOLD_"),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "torch_threads": str(torch.get_num_threads())}


def test_local_workers_get_one_thread_and_no_malloc_trim() -> None:
    assert "MALLOC_TRIM_THRESHOLD_" not in WORKER_ENVIRON
    dask = start_local_cluster(1, memory_limit=2**30)
    try:
        (seen,) = dask.client.run(_environ).values()
    finally:
        dask.close()
    assert seen == {"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": "1", "torch_threads": "1"}
