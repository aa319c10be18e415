"""Every branch of the adapt trust report's verdict (udf.training.adapt._verdict), on hand-made reports."""

import math

import pytest

from udf.training.adapt import _verdict, format_trust_report


def _report(adapted: dict[str, float], linear: dict[str, float], whittaker: dict[str, float], p3_r2: float,
            within_1std: float) -> dict:
    methods = {"adapted": {p: {"mae": v, "r2": 0.8} for p, v in adapted.items()},
               "linear": {p: {"mae": v, "r2": 0.7} for p, v in linear.items()},
               "whittaker": {p: {"mae": v, "r2": 0.7} for p, v in whittaker.items()}}
    methods["adapted"]["P3"] = {"mae": 0.1, "r2": p3_r2}
    return {"test_pixels": 100, "methods": methods, "adapted_coverage": {"within_1std": within_1std},
            "base_coverage": {"within_1std": 0.6, "within_2std": 0.9}}


GOOD = {"P2_60": 0.05, "P2_90": 0.07}


@pytest.mark.parametrize("adapted,linear,whittaker,beats", [
    (GOOD, {"P2_60": 0.08, "P2_90": 0.10}, {"P2_60": 0.07, "P2_90": 0.09}, True),
    (GOOD, {"P2_60": 0.05, "P2_90": 0.07}, {"P2_60": 0.09, "P2_90": 0.09}, True),  # a tie counts as beating
    (GOOD, {"P2_60": 0.08, "P2_90": 0.06}, {"P2_60": 0.07, "P2_90": 0.09}, False),  # linear wins on P2_90
    (GOOD, {"P2_60": 0.08, "P2_90": 0.10}, {"P2_60": 0.04, "P2_90": 0.09}, False),  # Whittaker wins on P2_60
    ({"P2_60": math.nan, "P2_90": 0.07}, {"P2_60": 0.08, "P2_90": 0.10}, {"P2_60": 0.07, "P2_90": 0.09}, False),
])
def test_gap_filling_verdict(adapted, linear, whittaker, beats):
    verdict = _verdict(_report(adapted, linear, whittaker, 0.6, 0.7))
    if beats:
        assert verdict.startswith("gap filling beats interpolation on held-out blocks;"), verdict
    else:
        assert verdict.startswith("gap filling does NOT beat interpolation on held-out blocks: prefer the "
                                  "interpolation there;"), verdict


@pytest.mark.parametrize("r2,words", [(0.5, "S1-only R² 0.50: usable without any S2"),
                                      (0.81, "S1-only R² 0.81: usable without any S2"),
                                      (0.49, "S1-only R² 0.49: weak without any S2"),
                                      (math.nan, "S1-only R² nan: weak without any S2")])
def test_s1_only_verdict(r2, words):
    verdict = _verdict(_report(GOOD, {"P2_60": 0.1, "P2_90": 0.1}, {"P2_60": 0.1, "P2_90": 0.1}, r2, 0.7))
    assert f"; {words};" in verdict, verdict


@pytest.mark.parametrize("cov,words", [(0.683, "±1σ covers 68 % of held-out errors"),
                                       (0.31, "±1σ covers 31 % of held-out errors")])
def test_coverage_in_the_verdict_and_the_printed_report(cov, words):
    report = _report(GOOD, {"P2_60": 0.1, "P2_90": 0.1}, {"P2_60": 0.1, "P2_90": 0.1}, 0.6, cov)
    report["verdict"] = _verdict(report)
    assert report["verdict"].endswith(words + " (68 % expected).")
    text = format_trust_report(report)
    assert text.splitlines()[-1] == "Verdict: " + report["verdict"]
    assert f"adapted std coverage: ±1σ {100 * cov:.0f} %" in text


def test_a_report_without_gap_protocols_claims_nothing_about_gap_filling():
    """No P2_* scored (a series too short for the windows): the verdict says so instead of a vacuous "beats"."""
    verdict = _verdict(_report({}, {}, {}, 0.6, 0.7))
    assert verdict.startswith("gap filling not scored"), verdict
    assert "beat" not in verdict
