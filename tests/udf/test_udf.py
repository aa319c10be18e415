import json

import numpy as np
import openeo
import pytest
import torch
import xarray as xr
from openeo.udf import XarrayDataCube
from openeo.udf.run_code import execute_local_udf

from tests.conftest import make_cube
from udf import UDF_PATH
from udf.errors import BandNotAvailable, CheckpointMismatch, InvalidContext, InvalidValues, S1UnitsError
from udf.features import series_features
from udf.inference import predict_cube
from udf.preprocess import s1_to_linear, times_to_days
from udf.s1_ndvi_udf import apply_datacube
from udf.weights import load_checkpoint, save_checkpoint


def _run(cube: xr.DataArray, **context) -> xr.DataArray:
    return apply_datacube(cube, context)


def test_execute_local_udf_keeps_labels(random_checkpoint):
    cube = make_cube()
    res = execute_local_udf(UDF_PATH, XarrayDataCube(cube), fmt="netcdf")
    out = res.datacube_list[0].get_array()
    # the default (shipped) weights are used when no context is given
    assert list(out["bands"].values) == ["NDVI"]
    for dim in ("t", "y", "x"):
        np.testing.assert_array_equal(out[dim].values, cube[dim].values)
    assert out.dtype == np.float32 and np.isfinite(out.values).all()


def test_udf_from_file_is_accepted_by_the_client():
    udf = openeo.UDF.from_file(UDF_PATH)
    assert "def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray" in udf.code
    assert "from __future__" not in udf.code
    assert udf.get_runtime() == "Python"


def test_uncertainty_band_and_range(random_checkpoint):
    out = _run(make_cube(), weights=str(random_checkpoint), include_uncertainty=True)
    assert list(out["bands"].values) == ["NDVI", "NDVI_STD"]
    assert (out.sel(bands="NDVI_STD").values > 0).all()
    assert (np.abs(out.sel(bands="NDVI").values) <= 1).all()


def test_same_backscatter_in_every_encoding_gives_same_ndvi(random_checkpoint):
    outs = [_run(make_cube(units=u), weights=str(random_checkpoint)).values for u in ("db", "linear", "uint16_db")]
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-5)
    np.testing.assert_allclose(outs[0], outs[2], atol=1e-5)


def test_batch_size_does_not_change_results(random_checkpoint):
    """Pixels are independent (no spatial features): any batch size gives the same answer."""
    cube = make_cube(ny=9, nx=7)
    a = _run(cube, weights=str(random_checkpoint), batch_size=1).values
    b = _run(cube, weights=str(random_checkpoint), batch_size=10_000).values
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_float32_path_matches_float64_reference(random_checkpoint):
    """The streamed float32 UDF path equals features and network evaluated in float64 on the same cube."""
    cube = make_cube(units="db", ny=4, nx=4)
    model, meta = load_checkpoint(str(random_checkpoint))
    fast = predict_cube(cube, model, meta, device="cpu", self_calibration=False).sel(bands="NDVI").values
    nt = cube.sizes["t"]

    def flat(band: str) -> torch.Tensor:
        return torch.from_numpy(cube.sel(bands=band).values.astype(np.float64).reshape(nt, -1).T.copy())

    vv, vh = (10 ** (flat(b) / 10) for b in ("VV", "VH"))
    days = torch.from_numpy(times_to_days(cube["t"].values))
    feats = series_features(vv, vh, flat("NDVI"), days)
    ref_model = load_checkpoint(str(random_checkpoint))[0].double()
    with torch.no_grad():
        ref, _ = ref_model(feats.x, feats.base)
    ref_model.float()
    np.testing.assert_allclose(fast, np.clip(ref.numpy(), -1, 1).T.reshape(fast.shape), atol=1e-5)
    assert s1_to_linear(cube.sel(bands="VV").values, "db").dtype == np.float32


def test_nan_pixels_stay_nan_and_s1_only_works(random_checkpoint):
    cube = make_cube(units="linear")
    cube.loc[{"bands": ["VV", "VH"], "y": cube.y[0], "x": cube.x[0]}] = np.nan
    out = _run(cube, weights=str(random_checkpoint))
    assert np.isnan(out.values[:, 0, 0, 0]).all()
    assert np.isfinite(out.values[:, 0, 1:, :]).all()
    s1_only = _run(cube.sel(bands=["VV", "VH"]), weights=str(random_checkpoint))
    assert np.isfinite(s1_only.values[:, 0, 1:, :]).all()


def test_integer_cube_is_decoded():
    cube = make_cube(units="uint16_db", ndvi=False)
    assert cube.dtype == np.uint16
    assert np.isfinite(_run(cube).values).all()


def test_context_is_validated():
    with pytest.raises(InvalidContext, match="Unknown UDF context key.*known keys"):
        _run(make_cube(), weigths="x.npz")
    with pytest.raises(InvalidContext, match="s1_units"):
        _run(make_cube(), s1_units="decibel")
    with pytest.raises(InvalidContext, match="batch_size"):
        _run(make_cube(), batch_size=0)


def test_bad_inputs_give_clear_errors():
    with pytest.raises(BandNotAvailable, match="VH"):
        _run(make_cube().sel(bands=["VV", "NDVI"]))
    bad = make_cube(units="linear")
    bad.loc[{"bands": "NDVI"}] = bad.sel(bands="NDVI") * 5000
    with pytest.raises(InvalidValues, match="NDVI spans"):
        _run(bad)
    with pytest.raises(S1UnitsError, match="look like dB"):
        _run(make_cube(units="db"), s1_units="linear")


def test_checkpoint_mismatch(tmp_path, random_checkpoint):
    model, meta = load_checkpoint(str(random_checkpoint))
    save_checkpoint(model, {**meta, "bands": {"required": ["VV", "VH", "HH"]}}, tmp_path / "hh.npz")
    import json
    raw = dict(np.load(tmp_path / "hh.npz", allow_pickle=False))
    doctored = json.loads(str(raw["__metadata__"]))
    doctored["bands"] = {"required": ["VV", "VH", "HH"]}
    raw["__metadata__"] = np.array(json.dumps(doctored))
    np.savez(tmp_path / "hh2.npz", **raw)
    with pytest.raises(CheckpointMismatch, match=r"needs band\(s\) \['HH'\]"):
        _run(make_cube(), weights=str(tmp_path / "hh2.npz"))
    doctored["features"] = ["vv_db", "vh_db"]
    raw["__metadata__"] = np.array(json.dumps(doctored))
    np.savez(tmp_path / "feat.npz", **raw)
    with pytest.raises(CheckpointMismatch, match="trained on features"):
        _run(make_cube(), weights=str(tmp_path / "feat.npz"))


def test_shipped_weights_carry_their_provenance_and_loso_table():
    """The shipped weights say what they were trained on, what was reserved, and how they did on unseen sites."""
    from udf.weights import DEMO_ZERO_SHOT_NAME

    _, meta = load_checkpoint(None)
    data = meta["training_data"]
    assert meta["format_version"] == 2 and data["kind"] == "multi-site corpus"
    assert len(data["sites"]) >= 6 and not data["held_out_sites"]
    assert {r["name"] for r in data["reserved"]} >= {"embedded WorldCereal 31UDS sample"}
    assert meta["std_scale"] > 0 and set(meta["loso_summary"]) == set(data["sites"])
    for site, rows in meta["loso_summary"].items():
        assert {"P1", "P2_60", "P3"} <= set(rows), site
        assert "Linear" in rows["P1"] and "DL" in rows["P3"], site
    _, demo = load_checkpoint(UDF_PATH.parent / "data" / DEMO_ZERO_SHOT_NAME)
    assert demo["training_data"]["held_out_sites"] == ["flanders_2017"]
    assert "flanders_2017" not in demo["training_data"]["sites"]


def test_self_calibration_blends_between_the_model_and_the_interpolation(random_checkpoint):
    """Trust weight 1 gives the model, 0 the interpolation of the kept NDVI; the std scale comes from the cube."""
    from udf.selfcal import SelfCalibration, apply_weights

    cube = make_cube(units="linear", nt=30, ny=8, nx=8)
    model, meta = load_checkpoint(str(random_checkpoint))
    nt = cube.sizes["t"]

    def flat(band: str) -> torch.Tensor:
        return torch.from_numpy(cube.sel(bands=band).values.astype(np.float32).reshape(nt, -1).T.copy())

    days = torch.from_numpy(times_to_days(cube["t"].values))
    feats = series_features(flat("VV"), flat("VH"), flat("NDVI"), days)
    with torch.no_grad():
        raw, _ = model(feats.x, feats.base)
    has = torch.ones_like(raw, dtype=torch.bool)
    dist = torch.zeros_like(raw)
    torch.testing.assert_close(apply_weights(raw, feats.base, dist, has, [1.0] * 4), raw)
    torch.testing.assert_close(apply_weights(raw, feats.base, dist, has, [0.0] * 4), feats.base)
    out = predict_cube(cube, model, meta, device="cpu", include_uncertainty=True)
    cal = json.loads(out.attrs["s1ndvi_self_calibration"])
    # one fitted weight per distance bin, from observations of the cube (how they are chosen: test_selfcal.py)
    assert cal["pixels"] == 64 and cal["std_scale"] is not None and sum(cal["counts"]) > 0
    assert len(cal["weights"]) == len(cal["counts"]) == len(cal["bins_days"]) - 1
    assert SelfCalibration().std_scale is None  # nothing calibrated without NDVI: the checkpoint's scale applies
    s1_only = predict_cube(cube.sel(bands=["VV", "VH"]), model, meta, device="cpu")
    assert json.loads(s1_only.attrs["s1ndvi_self_calibration"])["std_scale"] is None
