"""The ``s1ndvi phenology`` sub-command: seasons per farming year of an NDVI cube file, as netCDF (and a figure)."""

import argparse
import logging

_log = logging.getLogger(__name__)

__all__ = ["cmd_phenology", "register_phenology"]


def register_phenology(sub: argparse._SubParsersAction) -> None:
    """Add ``phenology`` to the ``s1ndvi`` parser."""
    from udf.phenology import PhenologyConfig

    d = PhenologyConfig()
    p = sub.add_parser("phenology", help="seasons (SOS/POS/EOS, length, peak, amplitude, count) per farming year "
                                         "of an NDVI cube (e.g. the fused one)")
    p.add_argument("--cube", required=True, help="netCDF cube with band NDVI (and optionally NDVI_STD)")
    p.add_argument("--out", required=True, help="output netCDF: one t label per farming year, bands SOS_1 … N_SEASONS")
    p.add_argument("--year-start", default=d.year_start, help="farming year start, MM-DD (default %(default)s)")
    p.add_argument("--max-seasons", type=int, default=d.max_seasons, help="season slots per year (%(default)s)")
    p.add_argument("--min-amplitude", type=float, default=d.min_amplitude, help="NDVI (%(default)s)")
    p.add_argument("--min-relative-amplitude", type=float, default=d.min_relative_amplitude,
                   help="of the pixel's NDVI range (%(default)s)")
    p.add_argument("--min-length-days", type=float, default=d.min_length_days, help="days (%(default)s)")
    p.add_argument("--sos-fraction", type=float, default=d.sos_fraction, help="of the amplitude (%(default)s)")
    p.add_argument("--eos-fraction", type=float, default=d.eos_fraction, help="of the amplitude (%(default)s)")
    p.add_argument("--smoothing-days", type=float, default=d.smoothing_days, help="period halved (%(default)s)")
    p.add_argument("--max-gap-days", type=float, default=d.max_gap_days, help="days (%(default)s)")
    p.add_argument("--noise-std", type=float, default=d.noise_std,
                   help="NDVI_STD weights noise²/(noise²+std²); 0: pixel-relative weights (%(default)s)")
    p.add_argument("--std-floor-quantile", type=float, default=d.std_floor_quantile,
                   help="with --noise-std: weights relative to this quantile of each pixel's NDVI_STD (%(default)s)")
    p.add_argument("--k-sigma", type=float, default=d.k_sigma,
                   help="seasons and separating dips must exceed k × their NDVI_STD (%(default)s: off)")
    p.add_argument("--uncertainty", action="store_true",
                   help="also write CONF_k and SOS_STD_k/POS_STD_k/EOS_STD_k (costs about 1 + samples runs)")
    p.add_argument("--uncertainty-samples", type=int, default=d.uncertainty_samples,
                   help="perturbed series per pixel for the date stds (%(default)s)")
    p.add_argument("--flood-sos", action="store_true",
                   help="also write SOS_FLOOD_k: paddy flooding start from the cube's VV/VH bands")
    p.add_argument("--png", default=None, help="also write a figure: maps of N_SEASONS, SOS_1, POS_1 and series")
    p.set_defaults(func=cmd_phenology)


def cmd_phenology(args: argparse.Namespace) -> int:
    """``s1ndvi phenology``."""
    import numpy as np

    from udf.cli.output import say
    from udf.ingest.cube_io import read_cube, write_cube
    from udf.phenology import PhenologyConfig, phenology_cube

    config = PhenologyConfig(year_start=args.year_start, max_seasons=args.max_seasons,
                             min_amplitude=args.min_amplitude, min_relative_amplitude=args.min_relative_amplitude,
                             min_length_days=args.min_length_days,
                             sos_fraction=args.sos_fraction, eos_fraction=args.eos_fraction,
                             smoothing_days=args.smoothing_days, max_gap_days=args.max_gap_days,
                             noise_std=args.noise_std, std_floor_quantile=args.std_floor_quantile,
                             k_sigma=args.k_sigma, uncertainty=args.uncertainty,
                             uncertainty_samples=args.uncertainty_samples, flood_sos=args.flood_sos)
    cube = read_cube(args.cube)
    pheno = phenology_cube(cube, config)
    write_cube(pheno, args.out)
    extra = (", CONF/SOS_STD/POS_STD/EOS_STD" if config.uncertainty else "") + (", SOS_FLOOD" if config.flood_sos else "")
    years = ", ".join(str(t)[:10] for t in pheno["t"].values)
    counted = int(np.isfinite(pheno.sel(bands="N_SEASONS").values).sum())
    say(f"Wrote {args.out}: {pheno.sizes['t']} farming year(s) starting {years}; {pheno.sizes['bands']} bands "
        f"(SOS/POS/EOS/LOS/PEAK/AMP × {config.max_seasons} seasons, N_SEASONS{extra}) for {pheno.sizes['y']} × "
        f"{pheno.sizes['x']} pixels; {counted} pixel-years with a season count")
    if args.png:
        from udf.cli.phenology_plot import phenology_figure

        say(f"Wrote figure {phenology_figure(cube, pheno, args.png, config)}")
    return 0
