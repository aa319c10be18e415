"""Write the corpus-reader fixtures: a few real points of each MIT-licensed WorldCereal point table.

Run from the repository root with the shared data folder present (not needed by the tests, which read the
committed slices): ``python tests/data/corpus/make_data.py ../shared/data``. Sources and licences: see README.md here.
"""

import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent
LONG = {"fra_dekadal_long.parquet": ("multisite/fra_2022-23_dekadal_points.parquet", 4),
        "flanders_monthly_long.parquet": ("worldcereal_monthly/flanders_lpis_2021_points.parquet", 3)}
WIDE = {"flanders_dekadal_wide.parquet": ("multisite/flanders_2020-21_dekadal_points_wide.parquet", 3),
        "flanders_monthly_wide.parquet": ("multisite/flanders_2020-21_monthly_points_wide.parquet", 3)}


def main(root: Path) -> None:
    for name, (src, n) in LONG.items():
        df = pd.read_parquet(root / src)
        ids = sorted(df["sample_id"].unique())[:n]
        df[df["sample_id"].isin(ids)].to_parquet(HERE / name, index=False)
    for name, (src, n) in WIDE.items():
        df = pd.read_parquet(root / src).iloc[:n]
        keep = [c for c in df.columns if c.startswith(("SAR-", "OPTICAL-B04", "OPTICAL-B08"))
                or c in ("start_date", "end_date", "lat", "lon")]
        df[keep].to_parquet(HERE / name)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
