import numpy as np
import pytest

from tests.conftest import make_cube
from udf.errors import BandNotAvailable, DimensionNotAvailable, InvalidValues, S1UnitsError, TooFewTimeSteps
from udf.preprocess import check_cube, check_ndvi, check_times, detect_s1_units, s1_to_linear


@pytest.mark.parametrize("units", ["db", "linear", "uint16_db"])
def test_detect_units(units):
    cube = make_cube(units=units, ndvi=False)
    vv, vh = cube.sel(bands="VV").values, cube.sel(bands="VH").values
    assert detect_s1_units(vv, vh, dtype=cube.dtype) == units


def test_detect_units_after_float64_cast():
    """openEO casts cubes to float64: integer-valued compressed dB must still be recognised."""
    cube = make_cube(units="uint16_db", ndvi=False).astype(np.float64)
    assert detect_s1_units(cube.sel(bands="VV").values, cube.sel(bands="VH").values) == "uint16_db"


def test_detect_units_refuses_unknown_range():
    vals = np.random.default_rng(0).uniform(100.5, 900.5, (4, 3, 3))
    with pytest.raises(S1UnitsError, match="fit none of the known encodings"):
        detect_s1_units(vals, vals)


def test_detect_units_all_nodata():
    with pytest.raises(S1UnitsError, match="no valid value"):
        detect_s1_units(np.zeros((3, 2, 2)), np.full((3, 2, 2), np.nan))


def test_conversions_match_float64_reference():
    rng = np.random.default_rng(1)
    db = rng.uniform(-30, 5, 1000)
    np.testing.assert_allclose(s1_to_linear(db, "db"), 10.0 ** (db / 10.0), rtol=1e-6)
    raw = rng.integers(1, 65535, 1000).astype(np.float64)
    np.testing.assert_allclose(s1_to_linear(raw, "uint16_db"), 10.0 ** ((20 * np.log10(raw) - 83) / 10), rtol=1e-6)


@pytest.mark.parametrize("units,bad", [("db", 0.0), ("db", np.inf), ("linear", -np.inf), ("uint16_db", 65535.0),
                                       ("uint16_db", 0.0), ("linear", np.nan)])
def test_nodata_values_become_nan(units, bad):
    good = {"db": -12.0, "linear": 0.05, "uint16_db": 3000.0}[units]
    out = s1_to_linear(np.array([good, bad, good]), units)
    assert np.isnan(out[1]) and np.isfinite(out[[0, 2]]).all()


def test_db_linear_confusion_is_refused():
    lin = make_cube(units="linear", ndvi=False).sel(bands="VV").values
    db = make_cube(units="db", ndvi=False).sel(bands="VV").values
    with pytest.raises(S1UnitsError, match="look like linear power"):
        s1_to_linear(lin, "db")
    with pytest.raises(S1UnitsError, match="look like dB"):
        s1_to_linear(db, "linear")
    with pytest.raises(S1UnitsError, match="uint16_db"):
        s1_to_linear(db, "uint16_db")


def test_check_cube_missing_band_names_present_bands():
    cube = make_cube().sel(bands=["VV", "NDVI"])
    with pytest.raises(BandNotAvailable, match=r"\['VH'\].*\['VV', 'NDVI'\]"):
        check_cube(cube)


def test_check_cube_dims():
    cube = make_cube()
    with pytest.raises(DimensionNotAvailable, match="missing \\['t'\\]"):
        check_cube(cube.rename(t="time"))
    with pytest.raises(DimensionNotAvailable, match="unexpected \\['extra'\\]"):
        check_cube(cube.expand_dims("extra"))
    with pytest.raises(TooFewTimeSteps, match="1 time step"):
        check_cube(cube.isel(t=[0]))
    transposed = check_cube(cube.transpose("x", "bands", "t", "y"))
    assert transposed.dims == ("t", "bands", "y", "x")


def test_check_ndvi():
    with pytest.raises(InvalidValues, match="NDVI spans"):
        check_ndvi(np.array([0.2, 1.7]))
    out = check_ndvi(np.array([np.nan, 0.5, np.inf]))
    assert np.isnan(out[0]) and out[1] == pytest.approx(0.5) and np.isnan(out[2])


def test_times_must_increase():
    np.testing.assert_allclose(check_times(np.array([0.0, 10.0, 25.0])), [0, 10, 25])
    with pytest.raises(InvalidValues, match="strictly increasing; step 2"):
        check_times(np.array([0.0, 10.0, 10.0]))


@pytest.mark.parametrize("units", ["db", "linear", "uint16_db"])
def test_float32_decoding_matches_float64_reference(units):
    """The float32 decoder agrees with the float64 formulae of each encoding on random inputs."""
    rng = np.random.default_rng(4)
    raw = rng.integers(1, 65535, 5000).astype(np.float64)
    ref = 10 ** ((20 * np.log10(raw) - 83) / 10)  # linear power of each compressed-dB value
    values = {"uint16_db": raw.astype(np.uint16), "db": 10 * np.log10(ref), "linear": ref}[units]
    out = s1_to_linear(values, units, check=False)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=2e-6)


def test_decoding_sets_no_data_to_nan():
    out = s1_to_linear(np.array([0, 65535, 1000], dtype=np.uint16), "uint16_db")
    assert np.isnan(out[:2]).all() and np.isfinite(out[2])


def test_rvi_on_linear_power():
    from udf.preprocess import rvi

    vv, vh = np.array([0.1, np.nan, 0.0]), np.array([0.02, 0.01, 0.0])
    out = rvi(vv, vh)
    assert out[0] == pytest.approx(4 * 0.02 / 0.12) and np.isnan(out[1]) and np.isnan(out[2])
