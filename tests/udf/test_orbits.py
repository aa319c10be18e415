"""Per-orbit normalisation of S1: the pairing rule, the offsets, and the cube built from a two-orbit export."""

import numpy as np
import pytest

from tests.udf.gee_files import Series, s1_id, tobands_s1
from udf.errors import OrbitsNotComparable
from udf.ingest.options import IngestOptions
from udf.ingest.orbits import apply_offsets, pixel_offsets, plan_orbits
from udf.ingest.sources import make_cube


def _two_tracks(n: int = 20):
    """Track A every 6 days at 22:30, track B 5 days later at 22:38 (like two relative orbits of one pass)."""
    a = np.datetime64("2019-11-01T22:30:00") + np.arange(n) * np.timedelta64(6, "D")
    b = np.datetime64("2019-11-06T22:38:00") + np.arange(n) * np.timedelta64(6, "D")
    times = np.concatenate([a, b])
    orbits = np.array(["A"] * n + ["B"] * n)
    order = np.argsort(times)
    return times[order], orbits[order]


def test_plan_pairs_each_orbit_with_the_closest_reference_acquisition():
    times, orbits = _two_tracks()
    plan = plan_orbits(times, orbits, max_gap_days=3)
    assert plan is not None and plan.reference == "A" and plan.others == ["B"]
    own, ref = plan.pairs["B"]
    gaps = np.abs(times[own] - times[ref]).astype("timedelta64[m]").astype(int)
    assert (orbits[own] == "B").all() and (orbits[ref] == "A").all() and (gaps == 1440 - 8).all()
    assert plan_orbits(times, np.full(times.size, "A")) is None
    assert plan_orbits(times, np.full(times.size, "")) is None


def test_plan_refuses_partial_labels_and_unpaired_orbits():
    times, orbits = _two_tracks()
    partial = orbits.copy()
    partial[3] = ""
    with pytest.raises(OrbitsNotComparable, match=r"known for 39 S1 acquisitions and unknown for 1"):
        plan_orbits(times, partial)
    with pytest.raises(OrbitsNotComparable, match=r"orbit B has 0 acquisition\(s\) within 0.5 days"):
        plan_orbits(times, orbits, max_gap_days=0.5)


def test_pixel_offsets_recover_a_known_per_pixel_offset():
    times, orbits = _two_tracks()
    rng = np.random.default_rng(1)
    days = (times - times[0]).astype("timedelta64[h]").astype(float) / 24
    truth = -12 + 3 * np.sin(days / 60)[:, None, None, None] + rng.normal(0, 0.3, (times.size, 2, 4, 5))
    offset = rng.uniform(-3, 3, (2, 4, 5))
    observed = truth + np.where(orbits == "B", 1.0, 0.0)[:, None, None, None] * offset[None]
    plan = plan_orbits(times, orbits)
    est = pixel_offsets(10 ** (observed / 10), plan)
    assert np.abs(est[0] - offset).max() < 0.5
    fixed = 10 * np.log10(apply_offsets(10 ** (observed / 10), est, plan))
    before = np.abs(np.diff(observed, axis=0)).mean()
    after = np.abs(np.diff(fixed, axis=0)).mean()
    assert after < 0.6 * before
    np.testing.assert_allclose(fixed[orbits == "A"], observed[orbits == "A"], atol=1e-4)


def test_cube_from_a_two_orbit_export_is_normalised_per_pixel(tmp_path):
    times, orbits = _two_tracks(10)
    s = Series(nt=times.size, ny=6, nx=7, seed=3)
    rng = np.random.default_rng(2)
    offset = rng.uniform(-3, 3, (6, 7)).astype(np.float32)
    base = -11 + rng.normal(0, 0.2, s.shape).astype(np.float32)
    s.vv_db = base + np.where(orbits == "B", 1, 0)[:, None, None] * offset
    s.vh_db = s.vv_db - 6
    stamps = [str(t).replace("-", "").replace(":", "")[:15] for t in times]
    ids = [s1_id(st, 29739 if o == "A" else 29741) for st, o in zip(stamps, orbits)]
    f1 = tobands_s1(tmp_path / "s1.tif", s, ids)
    norm = make_cube([f1], None, IngestOptions(period=None))
    raw = make_cube([f1], None, IngestOptions(period=None, orbit_normalisation="none"))
    vv_norm = 10 * np.log10(norm.sel(bands="VV").values.astype(np.float64))
    vv_raw = 10 * np.log10(raw.sel(bands="VV").values.astype(np.float64))
    b_days = np.isin(norm["t"].values.astype("datetime64[D]"), times[orbits == "B"].astype("datetime64[D]"))
    assert np.abs(vv_raw[b_days] - base[orbits == "B"] - offset).max() < 1e-3
    assert np.abs(vv_norm[b_days] - base[orbits == "B"]).max() < 0.6
    assert "REL092: 10 acquisitions (reference)" in norm.attrs["s1_orbits"]
    assert "REL094: 10 acquisitions, 9 pairs" in norm.attrs["s1_orbits"]
    assert raw.attrs["s1_orbit_normalisation"].startswith("none")
