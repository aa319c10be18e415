"""Borrowing on and off in the shift scenarios (issue 18), through the same code as ``s1ndvi compare --protocol P3S,P3C``.

Everything is the shared evaluation code; this script only runs it for two configurations of the UDF:

- classes: :func:`comparison.compare.shift.resolve_land_cover` (the embedded WorldCereal labels on the sample, S1
  clusters on any other cube);
- scenarios: :func:`comparison.compare.shift.shift_protocols` (P3S checkerboard, one P3C per class);
- the UDF: :func:`comparison.compare.methods.dl_method` with borrowing on (as users get it) and off, optionally in
  independent tiles (as an ``apply_neighborhood`` without overlap);
- baselines: :func:`comparison.compare.shift.run_s1_only_baselines` (DateMean, Regression5);
- scores: :func:`comparison.compare.shift.per_class_metrics` / :func:`~comparison.compare.shift.per_class_table`
  (bias, MAE, R², ±1σ/±2σ per class on the hidden observations).

Usage: python -m comparison.compare.borrow_eval [--cube FILE] [--classes auto|clusters|FILE] [--clusters 4]
       [--tile N] [--weights W] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Optional

import numpy as np
import xarray as xr

from comparison.compare.evaluate import mask_cube
from comparison.compare.methods import dl_method
from comparison.compare.shift import (
    per_class_metrics,
    per_class_table,
    resolve_land_cover,
    run_s1_only_baselines,
    shift_protocols,
)
from udf.cli.output import say
from udf.evaluation.land_cover import LandCover
from udf.weights import load_checkpoint

__all__ = ["UDF_METHODS", "evaluate", "main"]

_log = logging.getLogger(__name__)

UDF_METHODS = {"UDF (borrowing)": True, "UDF (no borrowing)": False}
"""Method name → borrowing switch."""


def evaluate(cube: xr.DataArray, land: LandCover, tile: Optional[int] = None, weights: Optional[str] = None,
             protocols: tuple[str, ...] = ("P3S", "P3C"), class_min_size: int = 20) -> dict:
    """Per-class metrics (protocol → method → class → record) of the UDF with and without borrowing, and the baselines.

    Args:
        cube: model cube with linear S1 and NDVI.
        land: the classes of its pixels.
        tile: predict in independent tiles of this many px (None: whole cube).
        weights: checkpoint (None: the shipped weights).
        protocols: ``P3S`` and/or ``P3C``.
        class_min_size: fewest pixels with NDVI for a class to get a P3C scenario.
    """
    model, meta = load_checkpoint(weights)
    model.eval()
    prots = shift_protocols(cube, protocols, land, class_min_size=class_min_size)
    pixels = np.isfinite(cube.sel(bands="NDVI").values).any(0)
    _, predictions = run_s1_only_baselines(cube, prots, pixels)
    methods = {name: dl_method(model, meta, borrowing=b, tile=tile) for name, b in UDF_METHODS.items()}
    for pname, prot in prots.items():
        masked = mask_cube(cube, prot)
        for mname, method in methods.items():
            predictions[pname][mname] = method(masked, prot.pixels if prot.pixels is not None else pixels)
        _log.info("%s done", pname)
    return per_class_metrics(cube.sel(bands="NDVI").values, prots, predictions, land)


def main() -> None:
    """Command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cube", help="openEO-export netCDF with S1 and S2 B04/B08 (default: the embedded WorldCereal "
                   "sample, 10-day composites, with its crop-type labels)")
    p.add_argument("--classes", default="auto", help="auto, labels, clusters or a WorldCereal label file")
    p.add_argument("--clusters", type=int, default=4, help="k of the S1-signature clusters")
    p.add_argument("--tile", type=int, default=None, help="predict in tiles of this many px (default: whole cube)")
    p.add_argument("--weights", default=None)
    p.add_argument("--out", default=None, help="write the JSON report here")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.cube:
        from udf.ingest.base import build_cube, load_s1, load_s2_ndvi

        s1 = load_s1(args.cube)
        cube = build_cube(s1, load_s2_ndvi(args.cube, s1, use_scl=False), period=None)
    else:
        from udf.ingest.base import load_sample_cube

        cube = load_sample_cube()
    land = resolve_land_cover(cube, args.classes, args.clusters)
    report = evaluate(cube, land, tile=args.tile, weights=args.weights)
    sizes = {land.name(c): n for c, n in land.sizes().items()}
    say(per_class_table(report, {"source": land.source, "pixels": sizes}))
    if args.out:
        Path(args.out).write_text(json.dumps({"per_class": report, "classes": sizes}, indent=1, default=float))


if __name__ == "__main__":
    main()
