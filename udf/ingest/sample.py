"""Paths of the embedded real sample (WorldCereal patch 31UDS, Flanders, 2017-08 → 2018-11; MIT licence)."""

from pathlib import Path

SAMPLE_DIR = Path(__file__).parents[1] / "data" / "sample" / "worldcereal_31UDS_2017"


def sample_files() -> dict[str, Path]:
    """The sample's files: ``s1`` (VV/VH dB, 20 m), ``s2_10m`` (B04/B08), ``s2_20m`` (SCL)."""
    found = {}
    for key, prefix in (("s1", "S1_GRD-ASCENDING_20m_"), ("s2_10m", "S2_L2A_10m_"), ("s2_20m", "S2_L2A_20m_")):
        hits = sorted(SAMPLE_DIR.glob(prefix + "*.nc"))
        if len(hits) != 1:
            raise FileNotFoundError(f"Expected one '{prefix}*.nc' in {SAMPLE_DIR}, found {[h.name for h in hits]}.")
        found[key] = hits[0]
    return found


CROSS_SITE_FILE = Path(__file__).parents[1] / "data" / "sample" / "belgium_monthly_2020" / "belgium_2020_monthly_100x100.nc"
"""A second real site for cross-site checks: 100×100 px in Belgium (UTM 31N), monthly S1/S2 composites 2020-11 →
2021-10, openEO export layout (uint16 compressed-dB S1, cloud-masked S2 B04/B08; WorldCereal, MIT)."""
