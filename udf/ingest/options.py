"""The options of ``s1ndvi cube`` (:class:`IngestOptions`), shared by every reader of :mod:`udf.ingest`."""

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["LAYOUTS", "IngestOptions"]

LAYOUTS = ("auto", "netcdf", "tobands", "per-period", "cropharvest", "stac-folders")


@dataclass(frozen=True)
class IngestOptions:
    """How to read the inputs and build the cube (the ``s1ndvi cube`` options)."""

    layout: str = "auto"
    """One of :data:`LAYOUTS`; ``auto`` decides from the paths (``.nc``, ``.tif``, a folder) and the band names."""
    dates: Path | None = None
    """Sidecar CSV/JSON with the images' dates (GEE stacks)."""
    s1_units: str = "auto"
    """``auto``, ``db``, ``linear`` or ``uint16_db`` (the stored values)."""
    s1_backscatter: str = "auto"
    """``auto`` (from the layout), ``sigma0`` or ``gamma0``: recorded in the cube, not converted."""
    orbit_normalisation: str = "per-orbit"
    """``per-orbit`` (see :mod:`udf.ingest.orbits`) or ``none``."""
    orbit_pair_days: float = 3.0
    s2_mask: str = "auto"
    """``auto``, ``scl``, ``qa60`` or ``probability``."""
    cloud_probability: float = 40.0
    """Cloud probability (percent) above which a pixel is cloudy (``probability``/``MSK_CLDPRB`` masks)."""
    no_cloud_mask: bool = False
    """Accept S2 without any cloud mask; the cube then says its NDVI may be cloud-contaminated."""
    cloud_dilation: int = 0
    s2_level: str = "auto"
    """``auto``, ``l2a`` or ``l1c``: recorded in the cube."""
    scl: Path | None = None
    """Separate SCL netCDF (WorldCereal layout only)."""
    period: str | None = "auto"
    """Composite period (``12D``), None for every acquisition date, or ``auto``: 10 days, except for composited
    inputs (period folders, netCDF time series with an NDVI variable), which keep their own steps (their period
    length is then this option: required for period folders, which hold no dates)."""
    start: str | None = None
    end: str | None = None
    chunk: int = 128
    """Spatial block edge in pixels: memory per block grows with its area x time steps (docs/data.md, "Bring your own
    region"); a divisor of the files' tile size (256 for Earth Engine) keeps reads aligned."""
    workers: int | None = None
    """Blocks computed at the same time (threads); default ``min(4, cores)``."""
    bands: tuple[str, ...] | None = None
    """Band names in file order for period GeoTIFFs without band descriptions (:mod:`udf.ingest.composited`)."""
    extra_attrs: dict = field(default_factory=dict)
