"""The tiling engine: a UDF run per spatial tile (in this thread or on dask workers), tile files, block-wise writing."""
