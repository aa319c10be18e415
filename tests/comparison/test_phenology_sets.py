"""Matched-season phenology evaluation on sequence sets (issue 23): matching, scores, gaps, the CLI's output."""

import numpy as np

from comparison.phenology.evaluate import match_seasons
from comparison.phenology.sets import EvalOptions, dense_sets, evaluate_site, summarise, table_markdown
from udf.phenology import PhenologyConfig
from udf.seasons import Seasons
from udf.training.corpus.series import SeriesSet


def day(text: str) -> float:
    return float(np.datetime64(text, "D").astype(np.int64))


def bumps(days: np.ndarray, starts: list[float], length: float = 110.0) -> np.ndarray:
    out = np.full(days.shape, 0.2)
    for s in starts:
        x = np.clip((days - s) / length, 0, 1)
        out = np.maximum(out, 0.2 + 0.6 * np.sin(np.pi * x) ** 2)
    return out


def synthetic_set(n: int = 30, seed: int = 0) -> SeriesSet:
    rng = np.random.default_rng(seed)
    days = np.arange(day("2019-11-01"), day("2021-10-31"), 10.0)
    shift = rng.uniform(0, 30, n)
    ndvi = np.stack([bumps(days, [day("2020-01-15") + s, day("2020-06-01") + s, day("2021-01-15") + s,
                                  day("2021-06-01") + s]) for s in shift]) + rng.normal(0, 0.015, (n, days.size))
    ndvi[rng.random(ndvi.shape) < 0.15] = np.nan  # clouds
    s1 = np.full((n, days.size, 2), 0.05, dtype=np.float32)
    return SeriesSet(site="synthetic", source="test", grid="10D", days=np.tile(days, (n, 1)), s1=s1,
                     ndvi=ndvi.astype(np.float32), group=np.arange(n))


def seasons(extents: list[tuple[float, float, float]]) -> Seasons:
    """One pixel's seasons from (left minimum, peak, right minimum) days."""
    a = np.array([extents], dtype=float)
    one = np.ones(a.shape[:2])
    return Seasons(sos=a[..., 0] + 10, pos=a[..., 1], eos=a[..., 2] - 10, peak=0.8 * one, amp=0.5 * one,
                   peak_day=a[..., 1], start_day=a[..., 0], end_day=a[..., 2], first_day=np.zeros(1),
                   last_day=np.full(1, 1e5), smoothed=np.zeros((1, 2)))


def test_seasons_split_by_a_fill_are_matched_by_peak_not_missed():
    ref = seasons([(0.0, 100.0, 200.0)])
    halves = seasons([(0.0, 60.0, 90.0), (90.0, 130.0, 200.0)])  # a false dip splits it: IoU 0.45 and 0.55
    assert match_seasons(ref, halves).tolist() == [[1]]
    narrow = seasons([(40.0, 80.0, 120.0), (150.0, 170.0, 200.0)])  # IoU 0.4: only the nearest peak matches
    assert match_seasons(ref, narrow).tolist() == [[-1]]
    assert match_seasons(ref, narrow, peak_days=45.0).tolist() == [[0]]
    assert match_seasons(ref, seasons([(120.0, 150.0, 300.0)]), peak_days=45.0).tolist() == [[-1]]


def test_evaluate_site_scores_every_method_and_gap():
    ss = synthetic_set()
    assert dense_sets([ss])[0].n == ss.n
    opts = EvalOptions(gaps=(30, 90), max_sequences=20,
                       configs={"default": PhenologyConfig(), "k1": PhenologyConfig(k_sigma=1.0)})
    records = evaluate_site("synthetic", [ss], opts, lam=1e4)
    assert {(r["gap"], r["method"]) for r in records} == {(g, m) for g in (30, 90)
                                                         for m in ("Gapped", "Linear", "Whittaker")}
    rows = summarise(records)
    by = {(r["site"], r["gap"], r["method"]): r for r in rows}
    gapped30 = by[("synthetic", 30, "Gapped")]
    assert gapped30["reference"] >= 20 * 3 and gapped30["matched_share"] > 0.9 and gapped30["false_per_reference"] < 0.1
    assert gapped30["count_agreement"] > 0.8 and gapped30["SOS_p90"] < 10.0
    assert by[("synthetic", 90, "Gapped")]["in_gap"] > 0
    assert by[("all", 30, "Linear")]["reference"] == by[("synthetic", 30, "Linear")]["reference"]
    text = table_markdown(rows, "synthetic")
    assert text.count("\n") == 2 + 5 and "| 90 | Whittaker | default |" in text


def test_sparse_sets_are_not_dense():
    ss = synthetic_set()
    monthly = SeriesSet(site="s", source="m", grid="month", days=ss.days[:, ::3], s1=ss.s1[:, ::3],
                        ndvi=ss.ndvi[:, ::3], group=ss.group)
    assert dense_sets([monthly]) == []


def test_leave_one_site_out_choice_uses_the_other_sites_only():
    from comparison.phenology.sets import choose_leave_one_site_out

    def row(site: str, config: str, agree: float) -> dict:
        return {"site": site, "gap": 60, "method": "DL", "config": config, "count_agreement": agree,
                "matched_share": 0.9, "false_per_reference": 0.0}

    rows = [row("a", "x", 0.9), row("a", "y", 0.5), row("b", "x", 0.8), row("b", "y", 0.7),
            row("c", "x", 0.1), row("c", "y", 0.9)]
    got = choose_leave_one_site_out(rows, gaps=(60,))
    assert got["chosen"] == {"a": "y", "b": "y", "c": "x"}  # c prefers y itself, but a and b decide for c
    assert got["scores"]["y"]["c"] == 0.9 + 0.9
