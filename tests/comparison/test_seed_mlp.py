import numpy as np
import pytest

from comparison.compare.seed_mlp import seed_features


def test_seed_features_reproduce_the_rvi_on_db_flaw():
    vv, vh = np.full((2, 1, 1), -10.0), np.full((2, 1, 1), -16.0)
    f = seed_features(vv, vh)
    assert f.shape == (2, 1, 1, 10)
    assert f[0, 0, 0, 2] == pytest.approx(4 * -16 / (-26))  # RVI on dB: what the seed computed
    assert f[0, 0, 0, 5] == 0.0  # ΔVV at t=0 repeats the first step
