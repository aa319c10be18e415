"""P3S (checkerboard) and P3C (one land cover clouded) protocols, and the land-cover classes behind P3C."""

import numpy as np
import pytest
import xarray as xr

from tests.conftest import make_cube
from udf.evaluation.land_cover import NO_CLASS, LandCover, kmeans, labels_on_grid, s1_clusters, sample_label_file
from udf.evaluation.shift_protocols import checker_blocks, class_protocols, hide_checker, hide_class, hide_class_rows


def _ndvi(nt: int = 6, ny: int = 20, nx: int = 18, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.1, 0.9, (nt, ny, nx)).astype(np.float32)
    a[rng.random(a.shape) < 0.3] = np.nan
    return a


def test_checker_blocks_exact():
    b = checker_blocks((5, 7), block=2)
    expected = np.array([[(y // 2 + x // 2) % 2 == 0 for x in range(7)] for y in range(5)])
    assert np.array_equal(b, expected)
    assert np.array_equal(checker_blocks((5, 7), 2, phase=1), ~expected)
    with pytest.raises(ValueError, match="block"):
        checker_blocks((4, 4), 0)


def test_p3s_hides_exactly_the_valid_obs_of_alternate_blocks():
    ndvi = _ndvi()
    prot = hide_checker(ndvi, block=4)
    blocks = checker_blocks(ndvi.shape[1:], 4)
    assert np.array_equal(prot.hidden, np.isfinite(ndvi) & blocks[None])
    masked = prot.apply(ndvi)
    assert not np.isfinite(masked[:, blocks]).any()                      # nothing left on hidden blocks
    assert np.array_equal(masked[:, ~blocks], ndvi[:, ~blocks], equal_nan=True)  # everything kept elsewhere
    assert np.array_equal(prot.pixels, blocks & np.isfinite(ndvi).any(0))
    assert np.array_equal(hide_checker(ndvi, block=4).hidden, prot.hidden)  # deterministic


def test_p3s_rejects_a_block_covering_the_cube():
    with pytest.raises(ValueError, match="checker-block"):
        hide_checker(_ndvi(ny=6, nx=6), block=8)


def test_p3c_hides_one_class_keeps_the_others():
    ndvi = _ndvi()
    classes = np.repeat(np.arange(3), 120)[np.random.default_rng(1).permutation(360)].reshape(20, 18)
    classes[0, :5] = NO_CLASS
    land = LandCover(classes.astype(np.int32), {0: "a", 1: "b", 2: "c"})
    prots = class_protocols(ndvi, land, min_size=10)
    assert set(prots) == {"P3C:a", "P3C:b", "P3C:c"}
    hidden_px = [p.hidden.any(0) for p in prots.values()]
    for i, (name, p) in enumerate(prots.items()):
        cls = {"P3C:a": 0, "P3C:b": 1, "P3C:c": 2}[name]
        assert np.array_equal(p.hidden, np.isfinite(ndvi) & (classes == cls)[None])
        masked = p.apply(ndvi)
        assert np.array_equal(masked[:, classes != cls], ndvi[:, classes != cls], equal_nan=True)
        for j in range(i):
            assert not (hidden_px[i] & hidden_px[j]).any()  # classes disjoint
    assert not any(p.hidden[:, 0, :5].any() for p in prots.values())  # unclassified pixels never hidden
    with pytest.raises(ValueError, match="no class"):
        hide_class(ndvi, classes, NO_CLASS)
    with pytest.raises(ValueError, match="class-min-size"):
        class_protocols(ndvi, land, min_size=1000)


def test_p3c_rows():
    valid = np.ones((4, 3), bool)
    assert np.array_equal(hide_class_rows(valid, np.array([1, 2, 1, -1]), 1).any(1), [True, False, True, False])


def test_kmeans_finds_separated_groups_and_is_seeded():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.1, (50, 3)), rng.normal(5, 0.1, (30, 3)), rng.normal(-5, 0.1, (20, 3))])
    lab = kmeans(x, 3, seed=4)
    assert np.array_equal(lab, np.repeat([0, 1, 2], [50, 30, 20]))  # numbered by size
    assert np.array_equal(kmeans(x, 3, seed=4), lab)


def test_s1_clusters_separate_two_backscatter_regimes():
    cube = make_cube(nt=8, ny=6, nx=6, units="linear")
    vv = cube.sel(bands="VV").values
    cube.loc[{"bands": "VV"}] = np.where(np.arange(6)[None, None, :] < 2, vv / 100.0, vv)  # water-like left columns
    land = s1_clusters(cube, k=2, seed=0)
    left = land.classes[:, :2]
    assert (left == left[0, 0]).all() and not (land.classes[:, 2:] == left[0, 0]).any()


def test_sample_labels_on_the_20m_grid():
    with xr.open_dataset(sample_label_file()) as ds:
        lx, ly, ct = ds["x"].values, ds["y"].values, ds["CT"].values
    # a 20 m grid whose cells hold 2×2 label pixels
    x20 = (lx[0::2] + lx[1::2]) / 2
    y20 = (ly[0::2] + ly[1::2]) / 2
    land = labels_on_grid(sample_label_file(), x20, y20, min_share=1.0)
    assert land.classes.shape == (32, 32)
    pure = (ct[0::2, 0::2] == ct[1::2, 0::2]) & (ct[0::2, 0::2] == ct[0::2, 1::2]) & (ct[0::2, 0::2] == ct[1::2, 1::2])
    pure &= np.isfinite(ct[0::2, 0::2])
    assert np.array_equal(land.classes[pure], ct[0::2, 0::2][pure].astype(int))
    assert land.sizes()[1200] > 200 and "CT 1200" in land.names.values()
