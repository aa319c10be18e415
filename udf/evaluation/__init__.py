"""Evaluation (tooling, not in the exported UDF): hold-out protocols, metrics, baselines, validation of a model."""
