"""Checkpoints: weights + metadata in one safe ``.npz`` file (no pickle), and the checks against a cube.

Layout: one array per ``state_dict`` entry (``param/<name>``) and ``__metadata__``, a JSON string with the format
version, band names, accepted S1 units, feature list, normalisation statistics, time features, architecture,
training-data description, calibration and held-out metrics.
"""

import io
import json
import logging
from pathlib import Path

import numpy as np
import torch

from udf.errors import CheckpointMismatch
from udf.features import feature_names
from udf.model import FusionNet, ModelConfig
from udf.preprocess import S1_BANDS, S1_UNITS

_log = logging.getLogger(__name__)

FORMAT_VERSION = 2
DEFAULT_WEIGHTS_NAME = "s1ndvi_gru_multisite.npz"
"""The shipped weights: pretrained on every site of the corpus (``s1ndvi pretrain``)."""
DEMO_ZERO_SHOT_NAME = "s1ndvi_gru_multisite_without_flanders_2017.npz"
"""Pretrained on every corpus site except the embedded sample's (``--holdout flanders_2017``): the demo's zero-shot."""
_CACHE: dict[str, tuple[FusionNet, dict]] = {}


def default_checkpoint_bytes() -> bytes:
    """Bytes of the default checkpoint shipped in ``udf/data`` (the exported UDF embeds them instead)."""
    path = Path(__file__).with_name("data") / DEFAULT_WEIGHTS_NAME
    if not path.exists():
        raise FileNotFoundError(f"Default weights '{path}' are missing; train with 's1ndvi train' or pass 'weights'.")
    return path.read_bytes()


def save_checkpoint(model: FusionNet, metadata: dict, path: str | Path) -> Path:
    """Write weights and metadata (``format_version``, ``model``, ``features`` ... are filled in here)."""
    meta = {
        **metadata,
        "format_version": FORMAT_VERSION,
        "model": model.config.to_dict(),
        "features": list(feature_names(model.config.calendar)),
        "bands": {"required": list(S1_BANDS), "optional": ["NDVI"]},
        "normalisation": {"mean": model.feature_mean.tolist(), "std": model.feature_std.tolist()},
    }
    arrays = {f"param/{k}": v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    arrays["__metadata__"] = np.array(json.dumps(meta, sort_keys=True))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        np.savez_compressed(fh, **arrays)
    return path


def load_checkpoint(source: str | Path | bytes | None = None) -> tuple[FusionNet, dict]:
    """Load a checkpoint (path, raw bytes, or None for the default weights); results are cached per source.

    Raises:
        CheckpointMismatch: wrong format version, or features different from the code's.
    """
    if source is None:
        key = "default"
    elif isinstance(source, bytes):
        key = f"bytes:{hash(source)}"
    else:
        key = str(source)
    if key in _CACHE:
        return _CACHE[key]
    if source is None:
        source = default_checkpoint_bytes()
    try:
        raw = source if isinstance(source, bytes) else Path(source).read_bytes()
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"Weights file '{key}' does not exist.") from exc
    with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
        if "__metadata__" not in npz.files:
            raise CheckpointMismatch(f"Weights {key!r} have no '__metadata__' entry: not an s1ndvi checkpoint.")
        meta = json.loads(str(npz["__metadata__"]))
        state = {k[len("param/"):]: torch.from_numpy(np.array(npz[k])) for k in npz.files if k.startswith("param/")}
    _check_meta(meta, key)
    model = FusionNet(ModelConfig.from_dict(meta["model"]))
    model.load_state_dict(state)
    model.eval()
    _CACHE[key] = (model, meta)
    return model, meta


def _check_meta(meta: dict, key: str) -> None:
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointMismatch(
            f"Weights {key!r} have format version {meta.get('format_version')}; this code reads {FORMAT_VERSION}."
        )
    expected = list(feature_names(bool(meta.get("model", {}).get("calendar", False))))
    if list(meta.get("features", [])) != expected:
        raise CheckpointMismatch(
            f"Weights {key!r} were trained on features {meta.get('features')}; this code builds {expected}."
        )


def check_cube_against(meta: dict, bands: list[str], s1_units: str) -> None:
    """Check a cube's bands and declared S1 units against checkpoint metadata; say exactly what does not match."""
    required = meta.get("bands", {}).get("required", list(S1_BANDS))
    missing = [b for b in required if b not in bands]
    if missing:
        raise CheckpointMismatch(f"The checkpoint needs band(s) {missing}; the cube has {bands}.")
    accepted = meta.get("s1_units_accepted", list(S1_UNITS))
    if s1_units not in accepted:
        raise CheckpointMismatch(f"The checkpoint accepts s1_units {accepted}; the cube declares {s1_units!r}.")
