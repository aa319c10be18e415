"""Comparison harness: the DL fusion against MOGPR, CropSAR and cheap baselines, on held-out real data."""

__all__: list[str] = []
