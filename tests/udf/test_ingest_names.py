"""Naming rules of exports (band names, dates, orbits, sidecars) and the S2 mask rules."""

import json

import numpy as np
import pytest

from udf.errors import CloudMaskMissing, DatesNotFound, UnsupportedLayout
from udf.ingest.cloudmask import choose_mask, clear_sky, ndvi_block
from udf.ingest.names import orbit_from_text, parse_datetime, parse_stack_names, read_sidecar

S1A = "S1A_IW_GRDH_1SDV_20191103T223012_20191103T223037_029739_036497_6B3A"


def test_band_name_styles():
    style, refs = parse_stack_names(["VV", "VH", "B4", "temperature_2m", "VV_1", "VH_1", "B4_1", "elevation"], "f")
    assert style == "suffix" and [(r.position, r.key, r.band) for r in refs] == [
        (0, "0", "VV"), (1, "0", "VH"), (2, "0", "B4"), (4, "1", "VV"), (5, "1", "VH"), (6, "1", "B4")]
    style, refs = parse_stack_names([f"{S1A}_VV", f"{S1A}_VH", "20191105T025549_20191105T025551_T49MDV_B8A"], "f")
    assert style == "prefix" and refs[0].key == S1A and refs[2].band == "B8A"
    with pytest.raises(UnsupportedLayout, match="3 bands without names"):
        parse_stack_names(["", "", ""], "f")
    with pytest.raises(UnsupportedLayout, match="without names"):
        parse_stack_names(["band_1", "Band 2"], "f")


def test_dates_in_ids_and_names():
    assert parse_datetime(S1A) == np.datetime64("2019-11-03T22:30:12")
    assert parse_datetime("20191105T025549_20191105T025551_T49MDV") == np.datetime64("2019-11-05T02:55:49")
    assert parse_datetime("s1_2019-11-13_asc") == np.datetime64("2019-11-13")
    assert parse_datetime("S1_20191113") == np.datetime64("2019-11-13")
    assert parse_datetime("period_7") is None and parse_datetime("20191399") is None


def test_orbits_from_ids_and_tokens():
    rel = orbit_from_text(S1A)
    same_track = S1A.replace("_029739_", f"_{29739 + 175:06d}_").replace("20191103T", "20191115T")
    assert rel == "REL092" and orbit_from_text(same_track) == rel
    assert orbit_from_text(S1A.replace("S1A_", "S1B_")) == f"REL{(29739 - 27) % 175 + 1:03d}"
    assert orbit_from_text("s1_20191101_DESC_032") == "DESC_032"
    assert orbit_from_text("vv_ascending") == "ASC"
    assert orbit_from_text("s1_20191101") is None and orbit_from_text("description") is None


def test_sidecars(tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text("id,date,orbitProperties_pass,relativeOrbitNumber_start\na,2019-11-01,DESCENDING,32\n"
                   "b,2019-11-13T22:30:00Z,ASCENDING,127\n")
    rows = read_sidecar(csv)
    assert [(r.key, str(r.date), r.orbit) for r in rows] == [
        ("a", "2019-11-01T00:00:00", "DESC_032"), ("b", "2019-11-13T22:30:00", "ASC_127")]
    js = tmp_path / "d.json"
    js.write_text(json.dumps([{"date": "2019-11-01", "orbit": "A"}]))
    assert read_sidecar(js)[0].orbit == "A" and read_sidecar(js)[0].key is None
    bad = tmp_path / "bad.csv"
    bad.write_text("id,when\na,2019-11-01\n")
    with pytest.raises(DatesNotFound, match="row 0 has no 'date' nor 'system:time_start'"):
        read_sidecar(bad)
    with pytest.raises(DatesNotFound, match="does not exist"):
        read_sidecar(tmp_path / "missing.csv")


def test_mask_choice_and_rules():
    assert choose_mask(["B04", "B08", "QA60", "SCL"], "auto", False, "x") == ("scl", "SCL")
    assert choose_mask(["B04", "B08", "QA60", "probability"], "auto", False, "x") == ("probability", "probability")
    assert choose_mask(["B04", "B08", "QA60"], "auto", False, "x") == ("qa60", "QA60")
    assert choose_mask(["B04", "B08"], "auto", True, "x") == ("none", None)
    with pytest.raises(CloudMaskMissing, match=r"bands \['B04', 'B08'\], expected one of \['SCL', 'probability'"):
        choose_mask(["B04", "B08"], "auto", False, "'s2.tif'")
    qa = np.array([[[0, 1 << 10, 1 << 11, 1 << 5]]], dtype=np.float32)
    assert clear_sky("qa60", qa, 40, 0).tolist() == [[[True, False, False, True]]]
    prob = np.array([[[10, 40, 41, np.nan]]], dtype=np.float32)
    assert clear_sky("probability", prob, 40, 0).tolist() == [[[True, True, False, False]]]
    grown = clear_sky("probability", np.array([[[0, 0, 90, 0, 0]]], np.float32), 40, 1)
    assert grown.tolist() == [[[True, False, False, False, True]]]


def test_ndvi_block_removes_the_offset_and_masks():
    red = np.array([[[1500.0, 1500.0, 900.0]]])
    nir = np.array([[[4000.0, 4000.0, 800.0]]])
    out = ndvi_block(red, nir, np.array([[[4, 9, 4]]], np.float32), "scl", 40, 0, np.array([1000.0]))
    assert out[0, 0, 0] == pytest.approx((3000 - 500) / 3500) and np.isnan(out[0, 0, 1]) and np.isnan(out[0, 0, 2])
