"""The FuseTS field case: inputs read right, MOGPR on (pixel NDVI, field RVI) per pixel, all methods scored."""

from __future__ import annotations

import numpy as np
import pytest

from comparison.compare.field_case import field_mogpr_method, field_rvi, field_truth, run_field_case


def test_field_inputs() -> None:
    truth = field_truth("BIDS_workshop")
    assert truth.dims == ("t", "bands", "y", "x") and truth.sizes["t"] == 31 and "UTM zone 30N" in truth.attrs["crs"]
    rvi = field_rvi("BIDS_workshop")
    assert list(rvi.columns) == ["RVI_DESC", "RVI_ASC"] and rvi.notna().sum().tolist() == [119, 60]
    assert np.all(np.diff(rvi.index.to_numpy()) > 0)
    with pytest.raises(FileNotFoundError, match="fields: \\('BIDS_demo', 'BIDS_workshop'\\)"):
        field_truth("nowhere")


def test_field_mogpr_predicts_at_s2_dates_and_counts_failures() -> None:
    truth = field_truth("BIDS_workshop")
    pixels = np.zeros((19, 21), bool)
    pixels[9, 10] = pixels[0, 0] = True  # (0, 0) lies outside the field: no NDVI, not fitted
    pred = field_mogpr_method(field_rvi("BIDS_workshop"), n_restarts=1)(truth, pixels)
    assert pred.failed[0, 0] and not pred.failed[9, 10]
    series = pred.mean[:, 9, 10]
    obs = truth.sel(bands="NDVI").values[:, 9, 10]
    assert np.isfinite(series).all() and np.nanmean(np.abs(series - obs)) < 0.05  # all obs kept: close fit
    assert np.isnan(pred.mean[:, 0, 0]).all() and np.isnan(pred.mean[:, 1, 1]).all()


@pytest.mark.slow
def test_field_case_runs_every_method() -> None:
    payload, preds, prots, cube = run_field_case("BIDS_workshop", max_pixels=3, n_restarts=1)
    assert set(payload["metrics"]) == {"P1", "P2_60", "P2_90"}
    assert set(payload["metrics"]["P1"]) == {"MOGPR", "CropSAR", "Whittaker", "Linear"}
    assert payload["scored_pixels"] == 3 and "VV and VH" in payload["dl"]
