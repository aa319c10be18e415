"""Data cubes of the local backend: the collection catalogue, lazy readers of local rasters, the sample data."""
