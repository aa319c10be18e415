"""The seed's pixel MLP, reproduced faithfully as a baseline (docs/DESIGN.md §4), flaws included and documented.

Ten hand-made features per pixel-step from S1 in **dB**: VV, VH, RVI, VV(t−1), VH(t−1), ΔVV, ΔVH, VV/VH, VH/VV,
VV·VH; a 256-128-64-32-16 MLP with BatchNorm and dropout regresses NDVI. Flaws kept on purpose, because they are
what the seed did: RVI = 4·VH/(VV + VH) is computed on dB values (meaningless: RVI is defined on linear power);
ratios of dB values are unstable near 0 dB; the model never sees NDVI, so it cannot use cloud-free observations; no
temporal context beyond one step. The seed scored it on its own training samples (R² 0.27); here it is trained on
the training blocks and scored on held-out blocks like every other method.
"""

import logging

import numpy as np
import torch
from torch import nn

from udf.training.loop import torch_threads

_log = logging.getLogger(__name__)

__all__ = ["SeedMLP", "seed_features"]


def seed_features(vv_db: np.ndarray, vh_db: np.ndarray) -> np.ndarray:
    """The seed's 10 features.

    Args:
        vv_db: ``(t, y, x)`` VV in dB (NaN where missing).
        vh_db: ``(t, y, x)`` VH in dB.

    Returns:
        ``(t, y, x, 10)`` float32 (NaN where S1 is missing; the previous step repeats at t = 0).
    """
    prev_vv = np.concatenate([vv_db[:1], vv_db[:-1]])
    prev_vh = np.concatenate([vh_db[:1], vh_db[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        rvi_on_db = 4 * vh_db / (vv_db + vh_db)
        feats = [vv_db, vh_db, rvi_on_db, prev_vv, prev_vh, vv_db - prev_vv, vh_db - prev_vh,
                 vv_db / vh_db, vh_db / vv_db, vv_db * vh_db]
    return np.stack(feats, axis=-1).astype(np.float32)


class _Net(nn.Module):
    def __init__(self, widths: tuple[int, ...] = (256, 128, 64, 32, 16), dropout: float = 0.2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        n_in = 10
        for w in widths:
            layers += [nn.Linear(n_in, w), nn.BatchNorm1d(w), nn.ReLU(), nn.Dropout(dropout)]
            n_in = w
        layers.append(nn.Linear(n_in, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[:, 0]


class SeedMLP:
    """Fit on training pixels' valid NDVI, predict NDVI from S1 alone."""

    def __init__(self, epochs: int = 30, batch_size: int = 512, lr: float = 1e-3, seed: int = 0) -> None:
        self.epochs, self.batch_size, self.lr, self.seed = epochs, batch_size, lr, seed
        self.net = _Net()
        self.mean = np.zeros(10, np.float32)
        self.std = np.ones(10, np.float32)

    def fit(self, vv_db: np.ndarray, vh_db: np.ndarray, ndvi: np.ndarray, pixels: np.ndarray) -> "SeedMLP":
        """Train on every valid (S1, NDVI) step of ``pixels`` ``(y, x)``; inputs ``(t, y, x)``."""
        with torch_threads(1):  # small batches: one thread is as fast, and far faster on a busy CPU
            return self._fit(vv_db, vh_db, ndvi, pixels)

    def _fit(self, vv_db: np.ndarray, vh_db: np.ndarray, ndvi: np.ndarray, pixels: np.ndarray) -> "SeedMLP":
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        feats = seed_features(vv_db, vh_db)[:, pixels]
        target = ndvi[:, pixels]
        ok = np.isfinite(feats).all(axis=-1) & np.isfinite(target)
        x, y = feats[ok], target[ok].astype(np.float32)
        self.mean, self.std = x.mean(axis=0), x.std(axis=0) + 1e-6
        xt, yt = torch.from_numpy((x - self.mean) / self.std), torch.from_numpy(y)
        opt = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        self.net.train()
        for _ in range(self.epochs):
            order = torch.from_numpy(rng.permutation(len(yt)))
            for i in range(0, len(yt) - 1, self.batch_size):
                idx = order[i:i + self.batch_size]
                if idx.numel() < 2:
                    continue
                loss = nn.functional.mse_loss(self.net(xt[idx]), yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        self.net.eval()
        _log.info("Seed MLP trained on %d samples", len(y))
        return self

    def predict(self, vv_db: np.ndarray, vh_db: np.ndarray) -> np.ndarray:
        """NDVI ``(t, y, x)`` from S1 dB; NaN where a feature is not finite."""
        feats = seed_features(vv_db, vh_db)
        ok = np.isfinite(feats).all(axis=-1)
        out = np.full(ok.shape, np.nan, dtype=np.float32)
        with torch.inference_mode():
            pred = self.net(torch.from_numpy((feats[ok] - self.mean) / self.std)).numpy()
        out[ok] = pred
        return out
