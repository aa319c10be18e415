"""The multi-site training corpus: real S1 + S2 sequences from every source, decoded into one representation.

:func:`load_corpus` reads the sources of :data:`SITES` (see :mod:`udf.training.corpus.sites`) into
:class:`~udf.training.corpus.series.SeriesSet` objects;
:mod:`udf.training.corpus.regrid` re-composites them onto other grids.
"""

from udf.training.corpus.series import SeriesSet
from udf.training.corpus.sites import SITES, SOURCES, Source, load_corpus, load_site

__all__ = ["SITES", "SOURCES", "SeriesSet", "Source", "load_corpus", "load_site"]
