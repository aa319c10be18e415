"""How a method's caveat (:attr:`comparison.compare.methods.Prediction.note`) says that it saw the values it is scored on.

A note that starts with :data:`IN_SAMPLE` marks a result computed with the hidden observations in its input (a
CropSAR file, a cloud MOGPR file whose raw band holds them); :data:`POSSIBLY_IN_SAMPLE` a result whose input is
unknown. Reports and figures mark such methods so that their scores are not read as those of a held-out method.
"""

from __future__ import annotations

__all__ = ["IN_SAMPLE", "POSSIBLY_IN_SAMPLE", "in_sample_tag"]

IN_SAMPLE = "in-sample"
POSSIBLY_IN_SAMPLE = "possibly in-sample"


def in_sample_tag(note: str | None) -> str:
    """``"in-sample"``, ``"possibly in-sample"`` or ``""`` (held out) from a method's note."""
    text = (note or "").strip()
    for tag in (POSSIBLY_IN_SAMPLE, IN_SAMPLE):
        if text.startswith(tag):
            return tag
    return ""
