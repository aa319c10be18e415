import numpy as np
import pytest
import torch

from udf.evaluation.protocols import spatial_block_split
from udf.ingest.base import load_sample_cube
from udf.masking import hide_all, hide_random, hide_window
from udf.model import FusionNet, ModelConfig
from udf.training.fit import fit
from udf.training.loop import in_site_config, laplace_nll, screen_cloud_dips
from udf.weights import load_checkpoint, save_checkpoint


def test_hide_random_fraction_and_subset():
    rng = np.random.default_rng(0)
    valid = rng.random((50, 40)) < 0.6
    hidden = hide_random(valid, 0.2, rng)
    assert not (hidden & ~valid).any()
    expected = np.maximum(np.round(0.2 * valid.sum(1)), np.where(valid.sum(1) >= 2, 1, 0))
    np.testing.assert_array_equal(hidden.sum(1), expected)


def test_hide_window_is_contiguous_and_inside():
    rng = np.random.default_rng(1)
    days = np.arange(40) * 10.0
    valid = rng.random((30, 40)) < 0.5
    hidden = hide_window(valid, days, 60.0, rng)
    assert not (hidden & ~valid).any()
    for row, v in zip(hidden, valid):
        idx = np.flatnonzero(row)
        assert idx.size >= 1
        start = days[idx[0]]
        inside = (days >= start) & (days < start + 60)
        np.testing.assert_array_equal(row, v & inside)
    assert hide_all(valid).sum() == valid.sum()


def test_cloud_dips_are_found():
    nd = np.array([[0.6, 0.62, 0.2, 0.63, 0.65, 0.1]])
    dips = screen_cloud_dips(nd, np.arange(6) * 10.0)
    np.testing.assert_array_equal(dips[0], [False, False, True, False, False, False])


def test_laplace_nll_reference():
    mean, log_b, y = torch.tensor([0.5, 0.2]), torch.tensor([-2.0, -1.0]), torch.tensor([0.6, 0.0])
    w = torch.tensor([1.0, 0.0])
    want = abs(0.6 - 0.5) / np.exp(-2.0) + (-2.0)
    assert float(laplace_nll(mean, log_b, y, w)) == pytest.approx(want, rel=1e-6)


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(3)
    model = FusionNet(ModelConfig(hidden=8, arch="tcn"))
    path = save_checkpoint(model, {"std_scale": 1.3}, tmp_path / "m.npz")
    loaded, meta = load_checkpoint(path)
    assert meta["std_scale"] == 1.3 and meta["model"]["arch"] == "tcn"
    x, base = torch.randn(3, 7, model.config.n_features), torch.rand(3, 7)
    with torch.no_grad():
        for a, b in zip(model(x, base), loaded(x, base)):
            torch.testing.assert_close(a, b)


def test_short_training_is_reproducible_and_learns():
    """Two epochs on the real sample: same seed → same weights; held-out P3 beats a constant guess."""
    cube = load_sample_cube(period=None)
    split = spatial_block_split((32, 32), block=8, seed=0)
    cfg = in_site_config(model=ModelConfig(hidden=16), epochs=3, steps_per_epoch=80, seed=5)
    m1, meta1 = fit(cube, split, cfg)
    m2, _ = fit(cube, split, cfg)
    for (k, a), (_, b) in zip(m1.state_dict().items(), m2.state_dict().items()):
        torch.testing.assert_close(a, b, msg=k)
    p3 = meta1["heldout_metrics"]["P3"]
    assert p3["n"] > 1000 and p3["n_nan"] == 0
    assert p3["r2"] > 0.0, p3
    assert 0.3 < meta1["heldout_std_coverage"]["within_1std"] < 0.95
