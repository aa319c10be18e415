# /// script
# dependencies = ["numpy", "xarray"]
# ///
"""openEO UDF: multi-season phenology per farming year (SOS/POS/EOS on a continuous time axis) from an NDVI cube.

Input cube dims ``t``, ``bands``, ``y``, ``x`` with band ``NDVI`` (e.g. the fusion UDF's output) and optionally
``NDVI_STD`` (weights the smoothing); other bands are ignored; any regular or irregular ``t``. Output
``(t, bands, y, x)``: one ``t`` label per farming year (its start date), bands ``SOS_k``, ``POS_k``, ``EOS_k``
(days since 1970-01-01), ``LOS_k`` (days), ``PEAK_k``, ``AMP_k`` for k = 1…``max_seasons`` and ``N_SEASONS``.
Use it with ``apply_dimension(process=UDF, dimension="t", target_dimension="bands")``.

Context keys (all optional): ``year_start`` ("MM-DD", default "11-01"), ``max_seasons`` (3), ``min_amplitude`` (0.1),
``min_relative_amplitude`` (0.25), ``min_length_days`` (30), ``sos_fraction`` (0.2), ``eos_fraction`` (0.2),
``smoothing_days`` (40), ``max_gap_days`` (60), ``noise_std`` (0.01; 0: relative std weights), ``std_floor_quantile``
(0.1), ``k_sigma`` (0), ``uncertainty`` (false; true adds bands ``CONF_k``, ``SOS_STD_k``, ``POS_STD_k``,
``EOS_STD_k`` after ``N_SEASONS``), ``uncertainty_samples`` (16), ``seed`` (0), ``flood_sos`` (false; true needs bands
``VV``, ``VH`` and adds ``SOS_FLOOD_k``: paddy flooding before each season); unknown keys are an error listing these.
Method: see ``udf/phenology.py``.
"""

from typing import cast

import xarray
from openeo.metadata import CollectionMetadata

from udf.phenology import PhenologyConfig, config_bands, phenology_cube


def apply_metadata(metadata: CollectionMetadata, context: dict) -> CollectionMetadata:
    """The output band labels, for backends that ask the UDF for its output metadata."""
    names = config_bands(PhenologyConfig.from_context(context))
    if not metadata.has_band_dimension():
        metadata = cast(CollectionMetadata, metadata.add_dimension(name="bands", label=names[0], type="bands"))
    return cast(CollectionMetadata, metadata.rename_labels(dimension="bands", target=names))


def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:
    """OpenEO UDF entry: phenology of every pixel of ``cube`` per farming year."""
    return phenology_cube(cube, PhenologyConfig.from_context(context))
