"""Phenology evaluation: seasons of the fused series against the observed ones and FuseTS' phenology."""
