"""Collections served from a local data directory, described by STAC metadata with ``cube:dimensions``.

A file or folder directly under the data directory is a collection whose id is its name without extension
(``DIR/MY_CUBE.nc`` → ``MY_CUBE``; bands = its data variables). A sidecar ``<name>.json`` (or ``collection.json``
inside a folder) may override the id, title, band selection and add any STAC field; without one, the metadata is
generated from the file.
"""

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from openeo_driver.backend import CollectionCatalog, CollectionsListing

from local_backend.cubes.lazy_io import lazy_cube
from local_backend.cubes.readers import describe_source, open_source, source_kind
from local_backend.errors import CollectionNotFound, CollectionReadError, ProcessParameterInvalid

_log = logging.getLogger(__name__)

RasterCube = xr.DataArray
"""A cube with dims named ``t``, ``bands``, ``y``, ``x`` (openEO order) and ``attrs["crs"]`` (WKT)."""


@dataclass(frozen=True)
class LocalCollection:
    """One collection: where its data is and how it is described."""

    id: str
    """Collection id (file name without extension unless the metadata says otherwise)."""
    path: Path
    """File or folder holding the data."""
    metadata: dict[str, Any] = field(hash=False)
    """STAC collection metadata (with ``cube:dimensions``)."""

    @property
    def bands(self) -> list[str]:
        """Band names in collection order."""
        return list(self.metadata["cube:dimensions"]["bands"]["values"])


def _sidecar(path: Path) -> dict[str, Any]:
    candidates = [path / "collection.json"] if path.is_dir() else []
    candidates.append(path.with_name(path.name.split(".")[0] + ".json"))
    for candidate in candidates:
        if candidate.is_file():
            try:
                return dict(json.loads(candidate.read_text()))
            except json.JSONDecodeError as exc:
                raise CollectionReadError(f"Metadata file '{candidate}' is not valid JSON: {exc}") from exc
    return {}


def _epsg(crs_wkt: str | None) -> int | str | None:
    if not crs_wkt:
        return None
    from pyproj import CRS

    crs = CRS.from_user_input(crs_wkt)
    return crs.to_epsg() or crs.to_wkt()


def _axis(values: np.ndarray, axis: str, crs: int | str | None) -> dict[str, Any]:
    step = float(abs(values[1] - values[0])) if values.size > 1 else None
    half = (step or 0.0) / 2
    return {"type": "spatial", "axis": axis, "extent": [float(values.min()) - half, float(values.max()) + half],
            "step": step, "reference_system": crs}


def _wgs84_bbox(ds: xr.Dataset, crs_wkt: str | None) -> list[float]:
    x, y = ds["x"].values, ds["y"].values
    bounds = (float(x.min()), float(y.min()), float(x.max()), float(y.max()))
    if not crs_wkt:
        return list(bounds)
    from pyproj import Transformer

    transformer = Transformer.from_crs(crs_wkt, "EPSG:4326", always_xy=True)
    return [float(v) for v in transformer.transform_bounds(*bounds)]


def describe(collection_id: str, ds: xr.Dataset) -> dict[str, Any]:
    """Generate STAC collection metadata (with ``cube:dimensions``) for a decoded band dataset."""
    crs_wkt = ds.attrs.get("crs")
    crs = _epsg(crs_wkt)
    bands = [str(b) for b in ds.data_vars]
    dims: dict[str, Any] = {"x": _axis(ds["x"].values, "x", crs), "y": _axis(ds["y"].values, "y", crs)}
    interval: list[str | None] = [None, None]
    if "t" in ds.dims:
        times = np.datetime_as_string(ds["t"].values[[0, -1]], unit="s")
        interval = [f"{times[0]}Z", f"{times[1]}Z"]
        dims["t"] = {"type": "temporal", "extent": interval, "step": None}
    dims["bands"] = {"type": "bands", "values": bands}
    return {
        "type": "Collection", "stac_version": "1.0.0", "id": collection_id, "title": collection_id,
        "description": f"Local collection '{collection_id}'.", "license": "proprietary", "links": [],
        "extent": {"spatial": {"bbox": [_wgs84_bbox(ds, crs_wkt)]}, "temporal": {"interval": [interval]}},
        "cube:dimensions": dims,
        "summaries": {"eo:bands": [{"name": b} for b in bands]},
        "stac_extensions": ["https://stac-extensions.github.io/datacube/v2.2.0/schema.json"],
    }


def _merge(generated: dict[str, Any], sidecar: dict[str, Any], path: Path) -> dict[str, Any]:
    merged = {**generated, **{k: v for k, v in sidecar.items() if k != "cube:dimensions"}}
    dims = dict(generated["cube:dimensions"])
    wanted = sidecar.get("cube:dimensions", {}).get("bands", {}).get("values")
    if wanted is not None:
        unknown = [b for b in wanted if b not in dims["bands"]["values"]]
        if unknown:
            raise CollectionReadError(
                f"Metadata of '{path}' lists bands {unknown} that the data lacks; it has {dims['bands']['values']}."
            )
        dims["bands"] = {**dims["bands"], "values": list(wanted)}
    merged["cube:dimensions"] = dims
    merged["summaries"] = {**generated["summaries"], **sidecar.get("summaries", {})}
    merged["summaries"]["eo:bands"] = [{"name": b} for b in dims["bands"]["values"]]
    return merged


def scan(data_dir: Path) -> dict[str, LocalCollection]:
    """Find the collections directly under ``data_dir`` (unreadable entries are logged and skipped)."""
    found: dict[str, LocalCollection] = {}
    for path in sorted(data_dir.iterdir()):
        if path.name.startswith(".") or source_kind(path) is None:
            continue
        try:
            ds = open_source(path)
            sidecar = _sidecar(path)
            collection_id = str(sidecar.get("id", path.name.split(".")[0]))
            metadata = _merge(describe(collection_id, ds), sidecar, path)
        except CollectionReadError as exc:
            _log.warning("Skipping %s: %s", path, exc)
            continue
        if collection_id in found:
            raise CollectionReadError(f"Collection id '{collection_id}' is used by both {found[collection_id].path} "
                                      f"and {path}; rename one or set 'id' in its metadata.")
        found[collection_id] = LocalCollection(collection_id, path, metadata)
        _log.info("Collection %s from %s: bands %s", collection_id, path.name, found[collection_id].bands)
    return found


class LocalCollectionCatalog(CollectionCatalog):
    """openeo-driver collection catalog over :func:`scan` of a data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        if not self.data_dir.is_dir():
            raise CollectionReadError(f"Data directory '{self.data_dir}' does not exist or is not a directory.")
        self.collections = scan(self.data_dir)
        super().__init__(all_metadata=[c.metadata for c in self.collections.values()])

    def get(self, collection_id: str) -> LocalCollection:
        """The collection with this id, or :class:`CollectionNotFound` naming the available ones."""
        if collection_id not in self.collections:
            raise CollectionNotFound(collection_id, sorted(self.collections))
        return self.collections[collection_id]

    def get_collection_metadata(self, collection_id: str) -> dict:
        """Metadata for ``GET /collections/{id}`` (error naming the available ids when unknown)."""
        return dict(self.get(collection_id).metadata)

    def get_collections_listing(self) -> CollectionsListing:
        """``GET /collections``, its entries typed ``"type": "Collection"`` (openeo-driver's listing drops the key)."""
        from local_backend.api.conformance import StacCollectionsListing

        return StacCollectionsListing(collections=self.get_all_metadata())

    def open_cube(self, collection_id: str, bands: list[str] | None = None) -> RasterCube:
        """Open a collection lazily as a dask-backed ``(t, bands, y, x)`` cube (``attrs['crs']``, ``['collection']``).

        Nothing is read here: each chunk (and each window sliced from it) reads its own part of the files when
        computed, in whatever process computes it.
        """
        collection = self.get(collection_id)
        wanted = list(bands) if bands else collection.bands
        missing = [b for b in wanted if b not in collection.bands]
        if missing:
            raise ProcessParameterInvalid(
                "load_collection", "bands",
                f"bands {missing} not in collection '{collection_id}' (bands: {collection.bands})")
        cube = lazy_cube(describe_source(collection.path), wanted)
        cube.attrs["collection"] = collection_id
        return cube
