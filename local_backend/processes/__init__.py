"""Process implementations that processes-dask lacks or gets wrong for this backend.

Each module is one family: ``load`` (``load_collection``, ``sar_backscatter``), ``save`` (``save_result``),
``udf`` (``run_udf`` and UDF callbacks of ``apply_dimension``/``reduce_dimension``/``apply_neighborhood``).
"""

__all__: list[str] = []
