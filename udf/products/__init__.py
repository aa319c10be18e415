"""Outputs a GIS user opens directly: Cloud-Optimised GeoTIFFs per band and farming year, PNG maps, a short report."""
