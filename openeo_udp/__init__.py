"""Published openEO user-defined processes (UDP JSONs) of the fusion and the phenology, and their generator."""
