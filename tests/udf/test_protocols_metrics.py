import numpy as np
import pytest

from udf.evaluation.metrics import by_distance, distance_to_kept, score
from udf.evaluation.protocols import make_protocols, spatial_block_split


def test_spatial_split_is_disjoint_and_buffered():
    sp = spatial_block_split((32, 32), block=8, buffer=1, seed=0)
    assert not (sp.train & sp.test).any() and not (sp.val & sp.test).any() and not (sp.train & sp.val).any()
    ty, tx = np.nonzero(sp.train)
    for y, x in zip(*np.nonzero(sp.test)):
        assert (np.maximum(abs(ty - y), abs(tx - x)) > 1).all(), "a training pixel is a 3×3 neighbour of a test pixel"
    assert sp.describe()["test_px"] == 4 * 64


def test_protocols_hide_only_valid_observations_on_scored_pixels():
    rng = np.random.default_rng(0)
    nd = rng.random((40, 6, 6)).astype(np.float32)
    nd[rng.random(nd.shape) < 0.4] = np.nan
    pixels = np.zeros((6, 6), bool)
    pixels[:3] = True
    prots = make_protocols(nd, np.arange(40) * 10.0, pixels, seed=1)
    assert set(prots) == {"P1", "P2_60", "P2_90", "P3"}
    for p in prots.values():
        assert not (p.hidden & ~np.isfinite(nd)).any()
        assert not p.hidden[:, 3:].any()
    np.testing.assert_array_equal(prots["P3"].hidden[:, :3], np.isfinite(nd[:, :3]))
    again = make_protocols(nd, np.arange(40) * 10.0, pixels, seed=1)
    for name in prots:
        np.testing.assert_array_equal(prots[name].hidden, again[name].hidden)
    with pytest.raises(ValueError, match="Unknown protocol"):
        make_protocols(nd, np.arange(40) * 10.0, pixels, names=("P9",))


def test_score_counts_nan_and_matches_formulae():
    truth = np.array([0.1, 0.5, 0.9, 0.4])
    pred = np.array([0.2, 0.4, np.nan, 0.4])
    m = score(pred, truth, np.ones(4, bool))
    assert m["n"] == 4 and m["n_nan"] == 1
    t, p = truth[[0, 1, 3]], pred[[0, 1, 3]]
    assert m["mae"] == pytest.approx(np.abs(p - t).mean())
    assert m["r2"] == pytest.approx(1 - ((p - t) ** 2).sum() / ((t - t.mean()) ** 2).sum())
    assert m["bias"] == pytest.approx((p - t).mean())


def test_distance_to_kept():
    kept = np.zeros((5, 1, 1), bool)
    kept[[0, 4], 0, 0] = True
    dist = distance_to_kept(np.arange(5) * 10.0, kept)
    np.testing.assert_allclose(dist[:, 0, 0], [0, 10, 20, 10, 0])
    out = by_distance(np.zeros((5, 1, 1)), np.zeros((5, 1, 1)), ~kept, dist)
    assert out["0-15d"]["n"] == 2 and out["15-30d"]["n"] == 1
