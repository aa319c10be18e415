"""Ingest (tooling, not in the exported UDF): exports, folders and STAC items to a model cube file; the cube file format."""
