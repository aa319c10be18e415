"""Training (tooling, not in the exported UDF): the loop, fitting on one cube, adapting, pretraining on the corpus."""
