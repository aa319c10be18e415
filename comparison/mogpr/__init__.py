"""MOGPR (Pipia et al. 2019, FuseTS' ``mogpr_s1_s2``), batched in torch: the public entry of the package.

:func:`fit_predict` fits every pixel's multi-output Gaussian process (LCM of Matern-3/2 kernels, W_rank 1, a
Gaussian noise per output, per-pixel z-normalisation) and predicts at requested dates; :func:`mogpr_cube` does the
same on an ``(t, bands, y, x)`` cube. :mod:`comparison.mogpr.gpy` is FuseTS' GPy model (optional dependency), the
reference the batched code is checked against. The private modules hold the objective (``_model``: dense reference,
``_binned``: the fast path), the optimiser (``_optim``, ``_linesearch``), the worker pool (``_fit``) and the
posterior (``_predict``).
"""

from comparison.mogpr.core import (
    MOGPRResult,
    default_predict_times,
    fit_predict,
    log_likelihood,
    mogpr_cube,
    predict_with_params,
)

__all__ = ["MOGPRResult", "default_predict_times", "fit_predict", "log_likelihood", "mogpr_cube",
           "predict_with_params"]
