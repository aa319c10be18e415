"""``s1ndvi phenology-eval``: matched-season phenology of gapped, linear, Whittaker and DL series on dense corpus sites.

Per held-out site the DL model is ``MODELS/without_<site>.npz`` when ``--models`` names a folder of ``s1ndvi loso
--save-models`` folds (a model that never saw the site), otherwise the shipped weights (which saw the corpus sites in
pretraining except the embedded cubes' reserved blocks: the report says which was used). Writes
``phenology_eval.json`` (summary rows), ``phenology_records.json`` (raw errors) and ``phenology_eval.md``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

_log = logging.getLogger(__name__)

__all__ = ["cmd_phenology_eval", "register_phenology_eval"]


def register_phenology_eval(sub: argparse._SubParsersAction) -> None:
    """Add ``phenology-eval`` to the ``s1ndvi`` parser."""
    from comparison.phenology.sets import DENSE_SITES, GAPS

    p = sub.add_parser("phenology-eval", help="seasons of gapped / filled / fused series vs the full S2 series on "
                                              "dense corpus sites (matched seasons, 30/60/90-day gaps)")
    p.add_argument("--data", required=True, help="corpus folder (holding multisite/, worldcereal_monthly/ ...)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--sites", default=",".join(DENSE_SITES), help=f"comma-separated sites (default {DENSE_SITES})")
    p.add_argument("--gaps", default=",".join(map(str, GAPS)), help="gap lengths in days (default 30,60,90)")
    p.add_argument("--models", default=None, help="folder of LOSO fold models without_<site>.npz (s1ndvi loso "
                                                   "--save-models); default: the shipped weights")
    p.add_argument("--no-dl", action="store_true", help="baselines only")
    p.add_argument("--max-sequences", type=int, default=400, help="scored sequences per set (seeded, default 400)")
    p.add_argument("--seed", type=int, default=0, help="seed of subsamples and gaps")
    p.add_argument("--sweep", action="store_true",
                   help="also run the DL phenology with every --noise-std × --k-sigma and choose one leave-one-site-out "
                        "(written to phenology_choice.json)")
    p.add_argument("--noise-std", default="0,0.005,0.01,0.02,0.03", help="sweep values of noise_std (0: relative)")
    p.add_argument("--k-sigma", default="0,0.5,1,2", help="sweep values of k_sigma")
    p.set_defaults(func=cmd_phenology_eval)


def cmd_phenology_eval(args: argparse.Namespace) -> int:
    """``s1ndvi phenology-eval``."""
    import json

    from comparison.phenology.sets import (
        EvalOptions,
        choose_leave_one_site_out,
        config_grid,
        dense_sets,
        evaluate_site,
        save,
        summarise,
        table_markdown,
    )
    from udf.cli.output import say
    from udf.errors import CorpusError
    from udf.phenology import PhenologyConfig
    from udf.training.corpus.sites import load_site
    from udf.weights import load_checkpoint

    try:
        gaps = tuple(int(g) for g in args.gaps.split(","))
        sweep = (tuple(float(v) for v in args.noise_std.split(",")), tuple(float(v) for v in args.k_sigma.split(",")))
    except ValueError as exc:
        raise CorpusError(f"--gaps {args.gaps!r} / --noise-std / --k-sigma: expected comma-separated numbers.") from exc
    configs = {"default": PhenologyConfig(), **(config_grid(*sweep) if args.sweep else {})}
    opts = EvalOptions(gaps=gaps, configs=configs, max_sequences=args.max_sequences, seed=args.seed)
    records, used = [], {}
    for site in (s.strip() for s in args.sites.split(",")):
        sets = dense_sets(load_site(site, args.data), reserved_only=site == "flanders_2017")
        if not sets:
            _log.warning("Site %s has no dense set (S2 grid ≤ 16 days) under %s: skipped", site, args.data)
            continue
        model = None
        if not args.no_dl:
            fold = Path(args.models) / f"without_{site}.npz" if args.models else None
            if fold is not None and not fold.is_file():
                raise CorpusError(f"No LOSO model '{fold}' for held-out site {site}.")
            model, _ = load_checkpoint(fold)
            used[site] = str(fold) if fold else "shipped weights (site seen in pretraining unless reserved)"
        records += evaluate_site(site, sets, opts, model=model, progress=say)
    out = Path(args.out)
    path = save(records, out)
    rows = summarise(records)
    text = ["# Phenology of gapped, filled and fused series vs the full S2 series", "",
            "DL model per site: " + "; ".join(f"{k}: {v}" for k, v in used.items()) if used else "Baselines only.", ""]
    for site in ["all"] + sorted({r["site"] for r in records}):
        text += [f"## {site}", "", table_markdown(rows, site), ""]
    if args.sweep:
        choice = choose_leave_one_site_out([r for r in rows if r["config"] != "default"])
        (out / "phenology_choice.json").write_text(json.dumps(choice, indent=1), encoding="utf-8")
        text += ["## Leave-one-site-out choice of noise_std and k_sigma (DL, 60/90-day gaps)", "",
                 "Score = count agreement + matched share − false seasons per reference season.", "",
                 *(f"- held out {site}: chosen {cfg}" for site, cfg in choice["chosen"].items()), ""]
    (out / "phenology_eval.md").write_text("\n".join(text), encoding="utf-8")
    say(f"Wrote {out / 'phenology_eval.md'} and {path}")
    return 0
