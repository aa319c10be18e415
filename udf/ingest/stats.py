"""What an ingest read, used, ignored and decided: logged, kept in the cube's attributes, and checked.

No input variable is dropped silently: each one is either *used* (and listed in the log and in the cube attribute
``input_variables_used``) or *ignored* with the reason in a warning and in ``input_variables_ignored``. An NDVI-like
variable that holds no valid value is an error (a cube whose NDVI would come out empty).
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from udf.errors import NotEnoughNDVI

__all__ = ["IngestRecord", "check_ndvi_not_empty", "ndvi_coverage", "netcdf_leftovers"]

_log = logging.getLogger(__name__)


@dataclass
class IngestRecord:
    """The accounting of one ingest."""

    source: str
    used: dict[str, str] = field(default_factory=dict)
    """Variable → what it became."""
    ignored: dict[str, str] = field(default_factory=dict)
    """Variable → why it was not used."""
    grid: list[str] = field(default_factory=list)
    """Grid-mapping variables (read for the CRS, hold no data)."""
    decided: list[str] = field(default_factory=list)
    """Decisions taken on the user's behalf (dates, cadence, units)."""

    def use(self, name: str, role: str) -> None:
        """Record that ``name`` is used as ``role``."""
        self.used[name] = role

    def ignore(self, name: str, reason: str) -> None:
        """Record that ``name`` is not used, and warn with the reason."""
        self.ignored[name] = reason
        _log.warning("Variable '%s' of %s is ignored: %s", name, self.source, reason)

    def grid_variable(self, name: str) -> None:
        """Record a grid-mapping variable (its CRS is read; it holds no data)."""
        self.grid.append(name)

    def attrs(self) -> dict[str, str]:
        """Cube attributes ``input_variables_used``, ``input_variables_ignored``, ``ingest_decisions``."""
        out = {"input_variables_used": "; ".join(f"{k}: {v}" for k, v in self.used.items())}
        out["input_variables_ignored"] = "; ".join(f"{k}: {v}" for k, v in self.ignored.items()) or "none"
        if self.grid:
            out["input_grid_variables"] = ", ".join(self.grid) + " (CRS read from it)"
        out["ingest_decisions"] = "; ".join(self.decided) or "none"
        return out

    def log(self, sizes: dict) -> None:
        """Log what was used and decided (INFO)."""
        _log.info("Read %s into a cube %s; used %s", self.source, sizes,
                  ", ".join(f"{k} as {v}" for k, v in self.used.items()))
        for decision in self.decided:
            _log.info("Decided: %s", decision)


def check_ndvi_not_empty(ndvi: np.ndarray, name: str, source: str) -> None:
    """Raise when an NDVI-like variable holds no valid value.

    Raises:
        NotEnoughNDVI: every value is NaN, no-data or infinite.
    """
    if not np.isfinite(ndvi).any():
        raise NotEnoughNDVI(f"Variable '{name}' of {source} holds no valid NDVI value (all {ndvi.size} values are "
                            "NaN or no-data): the cube's NDVI would be empty. Check the export (masking, scale, "
                            "no-data value).")


def ndvi_coverage(ndvi: np.ndarray) -> float:
    """Fraction of (step, pixel) values with a valid NDVI."""
    return float(np.isfinite(ndvi).mean()) if ndvi.size else 0.0


_NOT_DATA = ("crs", "spatial_ref", "transverse_mercator", "latitude_longitude")


def netcdf_leftovers(paths: list, used: tuple[str, ...]) -> dict[str, str]:
    """Warn about the data variables of netCDF inputs that no band of ``used`` matched; return cube attributes.

    A variable matches a band when its name or ``long_name`` is the band or ends in ``-BAND``/``_BAND`` (as
    :func:`udf.ingest.base.find_band` matches them). Grid-mapping variables are not data.
    """
    import xarray as xr

    ignored: dict[str, str] = {}
    seen = set()
    for path in paths:
        if path is None or str(path) in seen:
            continue
        seen.add(str(path))
        with xr.open_dataset(path, decode_cf=False, decode_times=False) as ds:
            for name, var in ds.data_vars.items():
                label = str(var.attrs.get("long_name", "")).upper()
                if str(name) in _NOT_DATA or var.attrs.get("grid_mapping_name") or var.ndim == 0:
                    continue
                if any(str(name).upper() == b or str(name).upper().endswith(("-" + b, "_" + b))
                       or label.endswith("-" + b) for b in used):
                    continue
                ignored[f"{Path(path).name}:{name}"] = f"not a band the model uses ({', '.join(used)})"
    for key, why in ignored.items():
        _log.warning("Variable '%s' is ignored: %s", key, why)
    return {"input_variables_ignored": "; ".join(f"{k}: {v}" for k, v in ignored.items()) or "none"}
