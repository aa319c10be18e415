"""The training corpus: which real sources make up which site, read with each source's own encoding.

Sites are the units of leave-one-site-out evaluation: sources of one region and period (e.g. the Belgian cube and
the Flanders points of the same years) form one site, so a held-out site shares neither fields nor season with
training. Sources without a licence file are read from a data folder the user gives (``../shared/data`` in this
project) and never copied into the repository; the embedded sample (MIT) is always available.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from udf.errors import CorpusError
from udf.training.corpus.series import SeriesSet

_log = logging.getLogger(__name__)

__all__ = ["SITES", "Source", "load_corpus", "load_site"]


@dataclass(frozen=True)
class Source:
    """One file of the corpus."""

    site: str
    """Site it belongs to."""
    path: str
    """Path relative to the data folder (``embedded:`` for files shipped in ``udf/data``)."""
    reader: str
    """``long``, ``wide``, ``wide_tropics``, ``wide_extratropics``, ``worldcereal_patch``, ``openeo_cube``,
    ``cropharvest_tif``."""
    licence: str
    """Licence of the copied data."""
    options: dict = field(default_factory=dict)
    """Reader options."""


_BELGIUM = "multisite/belgium_2020-22_monthly_101x101.nc"
SOURCES: tuple[Source, ...] = (
    Source("flanders_2017", "embedded:worldcereal_31UDS_2017", "worldcereal_patch", "MIT"),
    Source("belgium_2020-22", _BELGIUM, "openeo_cube", "none (WorldCereal/presto-worldcereal)",
           {"fallback": "embedded:belgium_monthly_2020"}),
    Source("belgium_2020-22", "worldcereal_monthly/flanders_lpis_2021_points.parquet", "long", "MIT"),
    Source("belgium_2020-22", "multisite/flanders_2020-21_dekadal_points_wide.parquet", "wide", "MIT"),
    Source("belgium_2020-22", "multisite/flanders_2020-21_monthly_points_wide.parquet", "wide", "MIT"),
    Source("france_west_2022-23", "multisite/fra_2022-23_dekadal_points.parquet", "long", "MIT"),
    Source("corsica_2021-23", "multisite/corsica_2021-23_monthly_points.parquet", "long", "MIT"),
    Source("canada_2017-18", "multisite/canada_2017-18_monthly_points.parquet", "long",
           "none (WorldCereal/presto-worldcereal)"),
    Source("global_tropics", "multisite/global_a_monthly_points_wide.parquet", "wide_tropics", "none"),
    Source("global_tropics", "multisite/global_b_monthly_points_wide.parquet", "wide_tropics", "none"),
    Source("global_extratropics", "multisite/global_a_monthly_points_wide.parquet", "wide_extratropics", "none"),
    Source("global_extratropics", "multisite/global_b_monthly_points_wide.parquet", "wide_extratropics", "none"),
    Source("togo_2019-20", "multisite/togo_2019-20_monthly_17x17.tif", "cropharvest_tif", "CC BY-SA 4.0",
           {"start": "2019-02-06"}),
)
SITES: tuple[str, ...] = tuple(dict.fromkeys(s.site for s in SOURCES))
"""Site names in corpus order."""
TROPICS_LAT = 23.44


def _embedded(name: str) -> Path:
    return Path(__file__).resolve().parents[2] / "data" / "sample" / name


def wide_rows(path: Path, tropics: bool) -> np.ndarray:
    """Boolean mask over the rows of a wide point table: points in the tropics (|lat| < 23.44°) or the rest."""
    import pandas as pd

    lat = pd.read_parquet(path, columns=["lat"])["lat"].to_numpy()
    inside = np.abs(lat) < TROPICS_LAT
    return inside if tropics else ~inside


def _read(src: Source, root: Path | None) -> list[SeriesSet]:
    from udf.training.corpus import points, rasters

    if src.reader == "worldcereal_patch":
        from udf.ingest.base import load_sample_cube

        return [rasters.cube_series(load_sample_cube(period=None), src.site, "WorldCereal 31UDS sample",
                                    grid="acquisition")]
    path = None if root is None else root / src.path
    if src.reader == "openeo_cube":
        from udf.ingest.base import build_cube, load_s1, load_s2_ndvi

        if path is None or not path.exists():
            path = _embedded(src.options["fallback"].split(":", 1)[1]) / "belgium_2020_monthly_100x100.nc"
        s1 = load_s1(path)
        cube = build_cube(s1, load_s2_ndvi(path, s1, use_scl=False), period=None)
        return [rasters.cube_series(cube, src.site, path.name, block=20, grid="month")]
    if path is None or not path.exists():
        return []
    readers: dict[str, Callable[[], SeriesSet]] = {
        "long": lambda: points.read_long_points(path, src.site),
        "wide": lambda: points.read_wide_points(path, src.site),
        "wide_tropics": lambda: points.read_wide_points(path, src.site, rows=wide_rows(path, True)),
        "wide_extratropics": lambda: points.read_wide_points(path, src.site, rows=wide_rows(path, False)),
        "cropharvest_tif": lambda: rasters.read_cropharvest_tif(path, src.site, **src.options),
    }
    if src.reader not in readers:
        raise ValueError(f"Unknown reader {src.reader!r} for {src.path}; known: {sorted(readers)}.")
    return [readers[src.reader]()]


def load_site(site: str, root: str | Path | None) -> list[SeriesSet]:
    """Every available source of one site (missing files are skipped and logged)."""
    if site not in SITES:
        raise CorpusError(f"Unknown site {site!r}; known sites: {list(SITES)}.")
    root_path = None if root is None else Path(root)
    out: list[SeriesSet] = []
    for src in SOURCES:
        if src.site != site:
            continue
        sets = _read(src, root_path)
        if not sets:
            _log.warning("Corpus source %s not found under %s: skipped", src.path, root_path)
        out += [s for s in sets if s.n]
    return out


def load_corpus(root: str | Path | None, sites: tuple[str, ...] = SITES,
                reserve: bool = True) -> dict[str, list[SeriesSet]]:
    """Read every site of the corpus from the data folder ``root`` (the embedded sample is always included).

    Args:
        root: data folder (None: the embedded sources only).
        sites: sites to read.
        reserve: drop the reserved test blocks of the embedded cubes (:mod:`udf.training.corpus.reserved`); keep this on for
            anything that is shipped or scored on those cubes.

    Returns:
        site → its series sets (sites with no available source are left out).
    """
    if root is not None and not Path(root).is_dir():
        raise CorpusError(f"Corpus data folder '{root}' does not exist (expected e.g. ../shared/data with "
                                "multisite/, worldcereal_monthly/ ...).")
    corpus = {site: load_site(site, root) for site in sites}
    if reserve:
        from udf.training.corpus.reserved import drop_reserved, reserved_grids

        grids = reserved_grids()
        for site, sets in corpus.items():
            for k, s in enumerate(sets):
                sets[k], dropped = drop_reserved(s, grids)
                if dropped:
                    _log.info("Corpus %s/%s: %d reserved test-block pixels left out", site, s.source, dropped)
    return {k: v for k, v in corpus.items() if v}
