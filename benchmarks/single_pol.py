"""Single polarisation (VH only): can the shipped model use it honestly? Measured on the embedded sample.

The sample (WorldCereal 31UDS, 32 x 32 px, 12-day composites) is scored on held-out blocks under the same
protocols as ``adapt``'s trust report (P1 random hidden, P2_60 60-day gaps, P3 S1 only), with

- ``VV+VH``: the cube as it is;
- ``VH, VV=VH+c``: VV replaced by VH plus an offset c in dB (what a VH-only stack allows at best without VV: the
  VH/VV ratio becomes a constant and VV's own anomaly is VH's): the sample's own median VV−VH (the best case), and
  fixed 6 and 9 dB (what a user without VV would have to assume);
- linear interpolation of the kept NDVI (for scale).

Prints MAE and R² per protocol and the VH-only / VV+VH MAE ratio. Run: ``python benchmarks/single_pol.py``.
"""

import logging
import time

import numpy as np

from udf.evaluation.baselines import linear_interpolation
from udf.evaluation.metrics import score
from udf.evaluation.validation import aggregate, mask_sets, score_masked
from udf.ingest.base import build_cube, load_s1, load_s2_ndvi
from udf.ingest.sample import sample_files
from udf.training.adapt import adapt_split
from udf.training.fit import split_series
from udf.weights import load_checkpoint

PROTOCOLS = ("P1", "P2_60", "P3")
FIXED_OFFSETS = (6.0, 9.0)
"""VV − VH offsets (dB) a VH-only stack would have to assume (the sample's own median is about 7.7 dB)."""


def main() -> None:
    """Print the comparison."""
    logging.basicConfig(level=logging.WARNING)
    t0 = time.perf_counter()
    files = sample_files()
    s1 = load_s1(files["s1"])
    cube = build_cube(s1, load_s2_ndvi(files["s2_10m"], s1, scl_path=files["s2_20m"]), period="12D")
    cube.attrs["composite_period"] = "12D"
    vv, vh = cube.sel(bands="VV").values, cube.sel(bands="VH").values
    offset = float(np.nanmedian(10 * np.log10(vv / vh)))
    variants = [("VV+VH", cube)]
    for c in (offset, FIXED_OFFSETS[0], FIXED_OFFSETS[1]):
        single = cube.copy()
        single.loc[{"bands": "VV"}] = vh * 10 ** (c / 10)
        variants.append((f"VH, VV=VH+{c:.1f}dB", single))
    model, meta = load_checkpoint(None)
    split = adapt_split((cube.sizes["y"], cube.sizes["x"]))
    rows = {}
    for name, c in variants:
        parts = split_series(c, split)
        masked = mask_sets([parts["test"]], PROTOCOLS, seed=2, max_sequences=4000)
        res = score_masked(model, masked, meta.get("std_scale", 1.0), self_calibration=True,
                           calibrate_s1_only_on=parts["train"])
        rows[name] = aggregate(res, ("protocol",))
        if name == "VV+VH":
            rows["linear"] = {m.protocol: score(linear_interpolation(m.kept_ndvi().T, m.series.days[0]).T,
                                                m.series.ndvi, m.hidden) for m in masked}
    print(f"Sample 31UDS, 12-day composites, {parts['test'].n} held-out pixels; VV-VH median offset {offset:.2f} dB")
    print(f"{'protocol':<8}" + "".join(f"{k:>22}" for k in rows))
    for p in PROTOCOLS:
        cells = "".join(f"{rows[k].get(p, {}).get('mae', np.nan):10.3f} / {rows[k].get(p, {}).get('r2', np.nan):5.2f}"
                        .rjust(22) for k in rows)
        print(f"{p:<8}{cells}   MAE / MAE(VV+VH): " + ", ".join(
            f"{rows[k][p]['mae'] / rows['VV+VH'][p]['mae']:.2f}" for k in rows if k.startswith("VH,")))
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
