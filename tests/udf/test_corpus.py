import numpy as np
import pandas as pd
import pytest

from tests.conftest import DATA
from udf.errors import CubeError
from udf.evaluation.protocols import spatial_block_split
from udf.ingest.decode import compressed_db_to_linear
from udf.training.corpus.points import read_long_points, read_wide_points
from udf.training.corpus.rasters import cube_series
from udf.training.corpus.regrid import composite_days, regular_edges, training_variants
from udf.training.corpus.reserved import RESERVED_SPLIT, drop_reserved, reserved_grids
from udf.training.corpus.series import SeriesSet

CORPUS = DATA / "corpus"


def _day(text: str) -> float:
    return float(np.datetime64(text, "D").astype(np.int64))


def test_long_points_decode_compressed_db_and_ndvi():
    ss = read_long_points(CORPUS / "fra_dekadal_long.parquet", "fra")
    raw = pd.read_parquet(CORPUS / "fra_dekadal_long.parquet")
    assert ss.n == raw["sample_id"].nunique() == 4 and ss.grid == "dekad"
    assert np.all(np.diff(ss.days, axis=1) > 0)
    row = raw.sort_values(["sample_id", "timestamp"]).iloc[5]
    i = sorted(raw["sample_id"].unique()).index(row["sample_id"])
    j = int(np.flatnonzero(ss.days[i] == _day(str(row["timestamp"])[:10]))[0])
    vv = 10 ** ((20 * np.log10(row["S1-SIGMA0-VV"]) - 83) / 10) if 0 < row["S1-SIGMA0-VV"] < 65535 else np.nan
    np.testing.assert_allclose(ss.s1[i, j, 0], vv, rtol=1e-5, equal_nan=True)
    b4, b8 = float(row["S2-L2A-B04"]), float(row["S2-L2A-B08"])
    ndvi = (b8 - b4) / (b8 + b4) if b4 != 65535 and b8 != 65535 else np.nan
    np.testing.assert_allclose(ss.ndvi[i, j], ndvi, rtol=1e-6, equal_nan=True)
    finite = ss.ndvi[np.isfinite(ss.ndvi)]
    assert finite.size > 20 and finite.min() >= -1 and finite.max() <= 1


def test_long_points_round_timestamps_stamped_the_evening_before(tmp_path):
    """Canada's extraction stamps a month start as 22:00/23:00 UTC of the previous day: dates must be month starts."""
    df = pd.read_parquet(CORPUS / "flanders_monthly_long.parquet")
    df["timestamp"] = pd.to_datetime(df["timestamp"]) - pd.Timedelta(hours=2)
    df.to_parquet(tmp_path / "shifted.parquet", index=False)
    ss = read_long_points(tmp_path / "shifted.parquet", "x")
    days = ss.days[0].astype(np.int64).astype("datetime64[D]")
    assert all(str(d).endswith("-01") for d in days) and ss.grid == "month"


@pytest.mark.parametrize("name, grid, steps", [("flanders_dekadal_wide.parquet", "dekad", 49),
                                               ("flanders_monthly_wide.parquet", "month", 16)])
def test_wide_points_dates_follow_start_date(name, grid, steps):
    ss = read_wide_points(CORPUS / name, "fl")
    assert ss.grid == grid and ss.steps == steps and ss.n == 3
    days = ss.days[0].astype(np.int64).astype("datetime64[D]")
    assert str(days[0]) == "2020-08-01"
    if grid == "dekad":
        assert [str(d)[-2:] for d in days[:4]] == ["01", "11", "21", "01"]
    else:
        assert str(days[1]) == "2020-09-01"


def test_wide_points_per_row_start_dates(tmp_path):
    df = pd.read_parquet(CORPUS / "flanders_monthly_wide.parquet")
    df.loc[df.index[1], "start_date"] = "2019-10-26"
    df.to_parquet(tmp_path / "w.parquet")
    ss = read_wide_points(tmp_path / "w.parquet", "g")
    assert ss.days[1, 0] == _day("2019-10-26") and ss.days[1, 1] == _day("2019-11-26")
    assert ss.days[0, 0] == _day("2020-08-01")


def test_wide_points_refuse_other_tables(tmp_path):
    df = pd.read_parquet(CORPUS / "flanders_monthly_wide.parquet")
    df.drop(columns=[c for c in df.columns if "OPTICAL-B08" in c]).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(CubeError, match="B08-ts0"):
        read_wide_points(tmp_path / "bad.parquet", "g")


def test_compressed_db_no_data():
    out = compressed_db_to_linear(np.array([0, 65535, 1000.0]))
    assert np.isnan(out[:2]).all() and out[2] == pytest.approx(10 ** ((20 * 3 - 83) / 10), rel=1e-6)


def _random_set(n: int = 5, t: int = 40, seed: int = 0) -> SeriesSet:
    rng = np.random.default_rng(seed)
    days = np.cumsum(rng.integers(1, 7, t)).astype(float) + 18000
    s1 = rng.uniform(0.001, 0.2, (n, t, 2)).astype(np.float32)
    s1[rng.random((n, t)) < 0.3] = np.nan
    ndvi = rng.uniform(0, 0.9, (n, t)).astype(np.float32)
    ndvi[rng.random((n, t)) < 0.5] = np.nan
    return SeriesSet("s", "random", "acquisition", np.broadcast_to(days, (n, t)).copy(), s1, ndvi, np.arange(n))


def test_composite_days_matches_a_naive_float64_reference():
    ss = _random_set()
    edges = regular_edges(ss.days[0, 0], ss.days[0, -1], 10, offset=3)
    out = composite_days(ss, edges, "10D")
    for j, start in enumerate(out.days[0]):
        inside = (ss.days[0] >= start) & (ss.days[0] < start + 10)
        for i in range(ss.n):
            s1 = ss.s1[i, inside].astype(np.float64)
            ok = np.isfinite(s1).all(-1)
            want = s1[ok].mean(0) if ok.any() else np.full(2, np.nan)
            np.testing.assert_allclose(out.s1[i, j], want, rtol=1e-6, equal_nan=True)
            nd = ss.ndvi[i, inside].astype(np.float64)
            want_nd = nd[np.isfinite(nd)].mean() if np.isfinite(nd).any() else np.nan
            np.testing.assert_allclose(out.ndvi[i, j], want_nd, rtol=1e-6, equal_nan=True)


def test_training_variants_of_an_acquisition_series():
    grids = [s.grid for s in training_variants(_random_set(t=120))]
    assert grids[0] == "acquisition" and {"5D", "10D", "16D", "month"} <= set(grids)


def test_reserved_test_blocks_are_left_out_of_the_sample():
    from udf.ingest.base import load_sample_cube

    cube = load_sample_cube(period=None)
    ss = cube_series(cube, "flanders_2017", "sample", grid="acquisition")
    kept, dropped = drop_reserved(ss, reserved_grids())
    split = spatial_block_split((32, 32), **RESERVED_SPLIT)
    assert dropped == int((~(split.train | split.val)).sum()) and kept.n == ss.n - dropped
    allowed = {(round(x, 2), round(y, 2)) for x, y in ss.subset((split.train | split.val).ravel()).xy}
    assert {(round(x, 2), round(y, 2)) for x, y in kept.xy} == allowed


def test_cropharvest_stack_with_a_haze_screen():
    from udf.training.corpus.rasters import read_cropharvest_tif

    tif = DATA / "gee" / "98-togo_2019-02-06_2020-02-01.tif"
    ss = read_cropharvest_tif(tif, "togo", "2019-02-06")
    assert ss.n == 17 * 17 and ss.steps == 12 and ss.grid == "month"
    assert ss.days[0, 1] - ss.days[0, 0] == 30
    vv_db = 10 * np.log10(ss.s1[..., 0])
    assert -25 < np.nanmedian(vv_db) < -5  # dB decoded to linear and back
    strict = read_cropharvest_tif(tif, "togo", "2019-02-06", blue_cloud=1200.0)
    assert np.isfinite(strict.ndvi).sum() < np.isfinite(ss.ndvi).sum()  # the screen drops hazy composites
