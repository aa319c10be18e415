import numpy as np
import pytest
import xarray as xr

from tests.udf.test_export import run_isolated
from udf.errors import NotEnoughNDVI
from udf.export import export_udf
from udf.ingest.base import load_sample_cube
from udf.s1_ndvi_udf import apply_datacube
from udf.training import loop as training
from udf.training.adapt import AdaptOptions, adapt, adapt_split, format_trust_report
from udf.training.fit import eval_cube
from udf.weights import load_checkpoint, save_checkpoint

SENTINEL = 0.123456


@pytest.fixture(scope="module")
def sample_10d() -> xr.DataArray:
    return eval_cube(load_sample_cube(period=None))


@pytest.fixture(scope="module")
def adapted(sample_10d, random_checkpoint, tmp_path_factory):
    base, base_meta = load_checkpoint(random_checkpoint)
    opts = AdaptOptions(steps=30, steps_per_epoch=15, seed=1, threads=1)
    model, meta = adapt(sample_10d, base, base_meta, opts)
    path = save_checkpoint(model, meta, tmp_path_factory.mktemp("adapt") / "adapted.npz")
    return model, meta, path


def test_hidden_values_never_reach_training(sample_10d, random_checkpoint, monkeypatch):
    """Only the training blocks feed the optimiser: validation/test pixels and hidden values never do."""
    split = adapt_split((32, 32), seed=1)
    cube = sample_10d.copy(data=sample_10d.values.copy())
    nd = cube.sel(bands="NDVI").values
    cube.loc[{"bands": "NDVI"}] = np.where((split.val | split.test)[None] & np.isfinite(nd), SENTINEL, nd)
    seen = []
    original = training._draw

    def spy(pool, cfg, rng):
        batch = original(pool, cfg, rng)
        seen.append(batch[1].copy())
        return batch

    monkeypatch.setattr(training, "_draw", spy)
    base, meta = load_checkpoint(random_checkpoint)
    adapt(cube, base, meta, AdaptOptions(steps=20, steps_per_epoch=10, seed=1, threads=1), split=split,
          score_test=False)
    values = np.concatenate([b.ravel() for b in seen])
    assert len(seen) == 20 and np.isfinite(values).sum() > 1000
    assert not np.isclose(values, SENTINEL, atol=1e-7).any()


def test_base_model_is_not_modified(sample_10d, random_checkpoint, adapted):
    base, _ = load_checkpoint(random_checkpoint)
    fresh = load_checkpoint(random_checkpoint.read_bytes())[0]
    for (k, a), (_, b) in zip(base.state_dict().items(), fresh.state_dict().items()):
        assert np.array_equal(a.numpy(), b.numpy()), k


def test_trust_report_scores_every_method_on_the_test_blocks(adapted):
    _, meta, _ = adapted
    report = meta["trust_report"]
    assert set(report["methods"]) == {"adapted", "base", "linear", "whittaker"}
    for method in ("adapted", "base", "linear", "whittaker"):
        assert np.isfinite(report["methods"][method]["P1"]["mae"]), method
    assert np.isfinite(report["methods"]["adapted"]["P3"]["r2"])
    assert np.isnan(report["methods"]["linear"]["P3"]["mae"])  # interpolation has nothing to work with
    assert 0 < report["adapted_coverage"]["within_1std"] < 1
    text = format_trust_report(report)
    assert "Verdict:" in text and "whittaker" in text and "P2_60" in text


def test_adapted_checkpoint_runs_in_the_exported_udf(adapted, sample_10d, tmp_path):
    _, meta, path = adapted
    assert meta["training_data"]["kind"] == "adapted on the user's cube" and "std_scale" in meta
    udf_file = export_udf(tmp_path / "adapted_udf.py", weights=path)
    cube = sample_10d.isel(y=slice(0, 6), x=slice(0, 5))
    got = run_isolated(udf_file, cube, tmp_path)
    want = apply_datacube(cube, {"weights": str(path)})
    np.testing.assert_allclose(got.transpose(*want.dims).values, want.values, atol=1e-5)


def test_adapt_refuses_a_cube_without_ndvi(sample_10d, random_checkpoint):
    base, meta = load_checkpoint(random_checkpoint)
    with pytest.raises(NotEnoughNDVI, match="valid NDVI observations"):
        adapt(sample_10d.sel(bands=["VV", "VH"]), base, meta, AdaptOptions(steps=1))


def test_adapt_command_from_a_shell(sample_10d, tmp_path):
    """`s1ndvi adapt` as a user runs it: shipped weights as the base, trust report printed, checkpoint written."""
    import subprocess
    import sys

    from udf.ingest.cube_io import write_cube

    cube = write_cube(sample_10d, tmp_path / "cube.nc")
    out = tmp_path / "adapted.npz"
    proc = subprocess.run([sys.executable, "-m", "udf.cli", "adapt", "--cube", str(cube), "--out", str(out),
                           "--steps", "160", "--minutes", "30"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Trust report on" in proc.stdout and "Verdict:" in proc.stdout
    assert f"Wrote adapted checkpoint {out}" in proc.stdout
    _, meta = load_checkpoint(out)
    assert meta["adapted_from"]["training_data"]["kind"] == "multi-site corpus"
    assert set(meta["trust_report"]["methods"]["base"]) >= {"P1", "P2_60", "P3"}
    assert meta["adapt"]["steps_run"] == 160 and meta["adapt"]["epochs_run"] == 2
    assert meta["adapt"]["cut_by_time_cap"] is False and meta["adapt"]["time_cap_minutes"] == 30
