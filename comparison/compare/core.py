"""``s1ndvi compare``: the DL fusion, MOGPR, peers and baselines on the same hidden values of one cube.

One cube ``(t, bands[VV, VH, NDVI], y, x)`` is cut into spatial blocks (train / validation / test, buffered). Each
protocol hides observations of the scored (test) pixels once; every method gets the same masked cube. Learned
methods (Whittaker's λ, the seed MLP, a DL model trained here) use training blocks only; MOGPR fits each scored
pixel on its own kept observations. Peer files (cloud MOGPR, CropSAR) are scored on the same hidden values at the
dates they cover, with their caveats.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import xarray as xr

from comparison.compare.evaluate import evaluate, mask_cube
from comparison.compare.methods import Method, linear_method, mogpr_method, seed_mlp_method, whittaker_method
from comparison.compare.seed_mlp import SeedMLP
from comparison.errors import BandNotFound, NoOverlap
from udf.errors import CheckpointMismatch, DimensionNotAvailable
from udf.evaluation.baselines import choose_whittaker_lambda
from udf.evaluation.protocols import PROTOCOLS, Protocol, SpatialSplit, make_protocols, spatial_block_split
from udf.evaluation.shift_protocols import SHIFT_PROTOCOLS
from udf.preprocess import check_ndvi, detect_s1_units, s1_to_linear, times_to_days, to_db

_log = logging.getLogger(__name__)

__all__ = ["CompareOptions", "check_overlap", "dl_provenance", "learned_baselines", "load_cube", "masked_cubes",
           "parse_protocols", "plan", "prepare_cube", "run_comparison", "scored_pixels"]

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class CompareOptions:
    """What ``s1ndvi compare`` runs."""

    protocols: tuple[str, ...] = PROTOCOLS
    """Protocols among P1, P2_60, P2_90, P3, P3S, P3C (P3C expands to one protocol per class)."""
    mogpr: Optional[str] = "local"
    """``local`` (batched torch), ``gpy`` (FuseTS' GPy model), a cloud result file, or None."""
    mogpr_restarts: int = 3
    """Starts per pixel for local MOGPR (restart 0 = GPy's start; the most likely fit is kept)."""
    cropsar: Optional[str] = None
    """CropSAR NDVI file on the cube's grid, or None."""
    max_pixels: Optional[int] = None
    """Score at most this many test pixels (a seeded subsample, the same for every method)."""
    block: int = 8
    """Spatial hold-out block edge (pixels)."""
    seed: int = 0
    """Seed of the split, the subsample, the protocols and the learned baselines."""
    device: str = "cpu"
    """Torch device for DL and local MOGPR."""
    baselines: tuple[str, ...] = ("Linear", "Whittaker", "SeedMLP")
    """Cheap baselines to run."""
    extra: dict = field(default_factory=dict)
    """Free-form description added to the payload (e.g. the DL model's provenance)."""
    classes: str = "auto"
    """Land-cover classes for P3C and the per-class scores: auto, labels, clusters or a label file
    (:func:`comparison.compare.shift.resolve_land_cover`)."""
    clusters: int = 4
    """k of the S1-signature k-means where no labels exist."""
    class_min_size: int = 20
    """Fewest pixels (with NDVI) of a class that gets its own P3C protocol."""
    checker_block: int = 8
    """P3S block edge (pixels)."""
    s1_only_baselines: tuple[str, ...] = ("DateMean", "Regression5")
    """Baselines run on the S1-only protocols (P3, P3S, P3C) only."""


def parse_protocols(text: str) -> tuple[str, ...]:
    """``"P1,P2,P3"`` → ``("P1", "P2_60", "P2_90", "P3")`` (P2 means both gap lengths; P3S, P3C: issue 18)."""
    out: list[str] = []
    for part in (p.strip().upper() for p in text.split(",") if p.strip()):
        names = ["P2_60", "P2_90"] if part == "P2" else [part]
        for n in names:
            if n not in PROTOCOLS + SHIFT_PROTOCOLS:
                raise ValueError(f"Unknown protocol {part!r}; known: P1, P2 (= P2_60 + P2_90), P2_60, P2_90, P3, "
                                 "P3S (S2 kept on alternate blocks), P3C (one land cover clouded).")
            if n not in out:
                out.append(n)
    if not out:
        raise ValueError("No protocol given; use e.g. --protocol P1,P2,P3.")
    return tuple(out)


def prepare_cube(cube: xr.DataArray, s1_units: str = "auto") -> xr.DataArray:
    """Validate a truth cube and return it with linear S1 (float32).

    Raises:
        BandNotFound: VV, VH or NDVI missing (the message lists the cube's bands).
        NoOverlap: no valid NDVI, no valid S1, or their date ranges do not overlap.
    """
    if "time" in cube.dims and "t" not in cube.dims:
        cube = cube.rename(time="t")
    missing_dims = {"t", "bands", "y", "x"} - set(cube.dims)
    if missing_dims:
        raise DimensionNotAvailable(f"Cube dims {cube.dims} lack {sorted(missing_dims)}; expected (t, bands, y, x).")
    names = [str(b) for b in cube["bands"].values]
    for band in ("VV", "VH", "NDVI"):
        if band not in names:
            raise BandNotFound(f"Band {band!r} not in cube bands {names}: comparison needs VV, VH and the observed "
                               "NDVI (the truth)")
    vv, vh = cube.sel(bands="VV").values, cube.sel(bands="VH").values
    units = detect_s1_units(vv, vh, dtype=cube.dtype) if s1_units == "auto" else s1_units
    data = np.stack([s1_to_linear(vv, units), s1_to_linear(vh, units), check_ndvi(cube.sel(bands="NDVI").values)],
                    axis=1).astype(np.float32)
    out = xr.DataArray(data, dims=("t", "bands", "y", "x"),
                       coords={"t": cube["t"].values, "bands": ["VV", "VH", "NDVI"], "y": cube["y"].values,
                               "x": cube["x"].values}, attrs=dict(cube.attrs))
    check_overlap(out)
    return out


def check_overlap(cube: xr.DataArray) -> None:
    """Raise :class:`NoOverlap` unless valid S1 (VV and VH) and valid NDVI dates overlap in time."""
    t = cube["t"].values
    s1_ok = (np.isfinite(cube.sel(bands="VV").values) & np.isfinite(cube.sel(bands="VH").values)).any((1, 2))
    s2_ok = np.isfinite(cube.sel(bands="NDVI").values).any((1, 2))

    def rng(ok: np.ndarray) -> str:
        return f"{str(t[ok].min())[:10]}…{str(t[ok].max())[:10]} ({int(ok.sum())} dates)" if ok.any() else "none"

    if not s1_ok.any() or not s2_ok.any():
        raise NoOverlap(f"Cube has valid S1 on {rng(s1_ok)} and valid NDVI on {rng(s2_ok)}: both are needed.")
    if t[s1_ok].max() < t[s2_ok].min() or t[s2_ok].max() < t[s1_ok].min():
        raise NoOverlap(f"Valid S1 dates {rng(s1_ok)} and valid NDVI dates {rng(s2_ok)} do not overlap: "
                        "no method can relate the two.")


def scored_pixels(test: np.ndarray, ndvi: np.ndarray, max_pixels: Optional[int], seed: int) -> np.ndarray:
    """Test pixels with at least one NDVI observation, subsampled (seeded) to ``max_pixels`` when given."""
    ok = test & np.isfinite(ndvi).any(0)
    if max_pixels is None or ok.sum() <= max_pixels:
        return ok
    pick = np.random.default_rng([seed, 7]).choice(np.flatnonzero(ok.ravel()), max_pixels, replace=False)
    out = np.zeros(ok.size, dtype=bool)
    out[pick] = True
    return out.reshape(ok.shape)


def learned_baselines(cube: xr.DataArray, split: SpatialSplit, names: tuple[str, ...], seed: int,
                      max_lambda_pixels: int = 800) -> tuple[dict[str, Method], dict]:
    """Linear interpolation, Whittaker (λ chosen on training pixels) and the seed MLP (trained on them)."""
    ndvi, days = cube.sel(bands="NDVI").values, times_to_days(cube["t"].values)
    methods: dict[str, Method] = {}
    info: dict = {}
    if "Linear" in names:
        methods["Linear"] = linear_method()
    if "Whittaker" in names:
        rng = np.random.default_rng(seed)
        pix = split.train & (rng.random(split.train.shape) < max_lambda_pixels / max(int(split.train.sum()), 1))
        info["whittaker_lambda"], info["whittaker_lambda_mae"] = choose_whittaker_lambda(ndvi, days, pix, seed=seed)
        methods["Whittaker"] = whittaker_method(info["whittaker_lambda"])
    if "SeedMLP" in names:
        mlp = SeedMLP(seed=seed).fit(to_db(cube.sel(bands="VV").values), to_db(cube.sel(bands="VH").values), ndvi,
                                     split.train)
        methods["SeedMLP"] = seed_mlp_method(mlp)
    return methods, info


def _mogpr(opts: CompareOptions, cube: xr.DataArray, pixel_progress: Optional[Progress]) -> dict[str, Method]:
    if opts.mogpr is None:
        return {}
    if opts.mogpr == "local":
        return {"MOGPR": mogpr_method("local", opts.mogpr_restarts, opts.device, pixel_progress)}
    if opts.mogpr == "gpy":
        from comparison.mogpr.gpy import import_gpy

        import_gpy()  # fail now, with the install recipe, not after the other methods ran
        return {"MOGPR-GPy": mogpr_method("gpy", progress=pixel_progress)}
    from comparison.peers import cloud_mogpr_method

    return {"MOGPR-file": cloud_mogpr_method(opts.mogpr, cube)}


def plan(cube: xr.DataArray, opts: CompareOptions, split: SpatialSplit) -> tuple[np.ndarray, dict[str, Protocol]]:
    """The scored pixels and each protocol's hidden observations (drawn once, shared by every method)."""
    ndvi, days = cube.sel(bands="NDVI").values, times_to_days(cube["t"].values)
    pixels = scored_pixels(split.test, ndvi, opts.max_pixels, opts.seed)
    protocols = make_protocols(ndvi, days, pixels, names=tuple(p for p in opts.protocols if p in PROTOCOLS),
                               seed=opts.seed + 2)
    shift = tuple(p for p in opts.protocols if p in SHIFT_PROTOCOLS)
    if shift:
        from comparison.compare.shift import resolve_land_cover, shift_protocols

        land = resolve_land_cover(cube, opts.classes, opts.clusters, opts.seed) if "P3C" in shift else None
        protocols.update(shift_protocols(cube, shift, land, opts.checker_block, opts.class_min_size))
    return pixels, protocols


def masked_cubes(cube: xr.DataArray, protocols: dict[str, Protocol]) -> dict[str, xr.DataArray]:
    """The cube each protocol hands to the methods (hidden NDVI set to NaN)."""
    return {name: mask_cube(cube, prot) for name, prot in protocols.items()}


def run_comparison(cube: xr.DataArray, opts: CompareOptions, dl: Optional[dict[str, Method]] = None,
                   split: Optional[SpatialSplit] = None, progress: Optional[Callable[[str], None]] = None,
                   pixel_progress: Optional[Progress] = None,
                   planned: Optional[tuple[np.ndarray, dict[str, Protocol]]] = None) -> tuple[dict, dict, dict]:
    """Split, hide, run every method, score.

    Args:
        cube: truth cube from :func:`prepare_cube`.
        opts: what to run.
        dl: the DL method(s) by name (built by the caller, who knows the model's provenance), or None.
        split: a spatial split (default: :func:`spatial_block_split` with ``opts.block`` / ``opts.seed``).
        progress: called with ``"protocol/method"`` after each run.
        pixel_progress: MOGPR's ``(done, total)`` pixels.
        planned: scored pixels and protocols from :func:`plan` (default: drawn here the same way).

    Returns:
        ``payload`` (JSON-ready: setup and metrics), ``predictions`` (protocol → method → Prediction) and
        ``protocols`` (name → Protocol).
    """
    t0 = time.perf_counter()
    split = split or spatial_block_split((cube.sizes["y"], cube.sizes["x"]), block=opts.block, seed=opts.seed)
    ndvi = cube.sel(bands="NDVI").values
    pixels, protocols = planned or plan(cube, opts, split)
    methods: dict[str, Method] = dict(dl or {})
    methods.update(_mogpr(opts, cube, pixel_progress))
    if opts.cropsar:
        from comparison.peers import cropsar_method

        methods["CropSAR"] = cropsar_method(opts.cropsar, cube)
    base, info = learned_baselines(cube, split, opts.baselines, opts.seed)
    methods.update(base)
    metrics, predictions = evaluate(cube, protocols, methods, pixels, progress=progress)
    if any(p.split(":")[0] in ("P3", "P3S", "P3C") for p in protocols):
        info.update(_shift_outputs(cube, opts, protocols, pixels, metrics, predictions))
    payload = {"options": {k: v for k, v in asdict(opts).items() if k != "extra"}, **opts.extra,
               "cube": {**{k: str(cube.attrs[k]) for k in ("ndvi_warning", "s2_level", "s1_backscatter")
                           if k in cube.attrs},
                        "shape": {k: int(v) for k, v in cube.sizes.items()}, "first": str(cube["t"].values[0])[:10],
                        "last": str(cube["t"].values[-1])[:10], "period": cube.attrs.get("composite_period")},
               "split": split.describe(), "scored_pixels": int(pixels.sum()),
               "subsampled": bool(pixels.sum() < (split.test & np.isfinite(ndvi).any(0)).sum()),
               **info, "metrics": metrics, "seconds_total": time.perf_counter() - t0}
    return payload, predictions, protocols


def _shift_outputs(cube: xr.DataArray, opts: CompareOptions, protocols: dict[str, Protocol], pixels: np.ndarray,
                   metrics: dict, predictions: dict) -> dict:
    """S1-only baselines on P3/P3S/P3C (merged into ``metrics``/``predictions``), in-sample flags, per-class scores."""
    from comparison.compare.shift import flag_in_sample, per_class_metrics, resolve_land_cover, run_s1_only_baselines

    base_m, base_p = run_s1_only_baselines(cube, protocols, pixels, opts.s1_only_baselines)
    for p in base_m:
        metrics[p].update(base_m[p])
        predictions[p].update(base_p[p])
    flag_in_sample(metrics, tuple(opts.extra.get("dl_trained_on_cube", ())))
    try:
        land = resolve_land_cover(cube, opts.classes, opts.clusters, opts.seed)
    except ValueError as exc:  # e.g. fewer pixels with S1 than clusters: no per-class scores, say why
        _log.warning("No per-class scores: %s", exc)
        return {"classes": {"skipped": str(exc)}}
    return {"classes": {"source": land.source, "pixels": {land.name(c): n for c, n in land.sizes().items()}},
            "per_class": per_class_metrics(cube.sel(bands="NDVI").values, protocols, predictions, land)}


def load_cube(path: str | Path, s1_units: str = "auto") -> xr.DataArray:
    """Read and validate a truth cube file (see :func:`prepare_cube`)."""
    from udf.ingest.cube_io import read_cube

    cube = read_cube(path)
    return prepare_cube(cube, s1_units=s1_units)


def dl_provenance(meta: dict, cube: xr.DataArray, split: SpatialSplit) -> str:
    """Where the DL checkpoint was trained relative to this cube, for the report (grids compared, not shapes).

    Raises:
        CheckpointMismatch: the checkpoint saw pixels of this cube that this run would score (trained on the cube
            with another split, or pretrained on a corpus that holds the cube outside its reserved test blocks).
    """
    from udf.training.fit import grid_fingerprint, grids_overlap

    data = meta.get("training_data", {})
    here = grid_fingerprint(cube)
    rng = data.get("time_range") or ["", ""]
    first, last = str(cube["t"].values[0])[:10], str(cube["t"].values[-1])[:10]
    if data.get("kind") == "multi-site corpus":
        return _corpus_provenance(data, here, split)
    if data.get("grid") and grids_overlap(data["grid"], here) and rng[0] <= last and first <= rng[1]:
        if meta.get("split") != split.describe():
            raise CheckpointMismatch(f"The DL checkpoint was trained on this cube's grid over {rng} with split "
                                     f"{meta.get('split')}, not this run's {split.describe()}: its training pixels may be "
                                     "scored here. Use the same --block/--seed, or train here (--train-dl MINUTES).")
        return (f"trained on the training blocks of this split ({data.get('cube_shape')} px, {rng[0]}…{rng[1]}); "
                "scored pixels are held out")
    return (f"trained elsewhere ({data.get('source', 'unknown source')}, {data.get('cube_shape')} px, "
            f"{rng[0]}…{rng[1]}): applied as is (cross-site for this cube)")


def _corpus_provenance(data: dict, here: dict, split: SpatialSplit) -> str:
    from udf.training.fit import grids_overlap

    sites = ", ".join(data.get("sites", []))
    for r in data.get("reserved", []):
        if grids_overlap(r["grid"], here):
            same_grid = all(r["grid"].get(k) == here.get(k) for k in ("shape", "x0", "y0", "dx", "dy"))
            if not same_grid or r["split"] != split.describe():
                raise CheckpointMismatch(
                    f"The DL checkpoint was pretrained on pixels of this area ({r['name']}); only the test blocks of "
                    f"split {r['split']} on its exact grid were held out, and this run scores split "
                    f"{split.describe()} on grid {here['shape']}. Use --block {r['split']['block_px']} --seed "
                    f"{r['split']['seed']} on that cube.")
            return (f"pretrained on the multi-site corpus ({sites}), which includes this site; this cube's test "
                    f"blocks were reserved (never seen): scored pixels are held out, but the site is not new")
    for g in data.get("grids", []):
        if grids_overlap({**g, "dx": here["dx"], "dy": here["dy"]}, here):
            raise CheckpointMismatch(
                f"The DL checkpoint was pretrained on pixels of this cube ({g['site']}: {g['source']}); scores here "
                "would be in-sample. Use a checkpoint pretrained without that site (`s1ndvi loso` / `s1ndvi "
                "pretrain`) or adapt and score on held-out blocks.")
    return (f"pretrained on the multi-site corpus ({sites}); no gridded source of it covers this cube: applied "
            "zero-shot (cross-site)")
