"""The generative sampler's round as plots: the conditional VAE's training loss and its latent map."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from htflow.report.style import label, save

#: the generative sampler's plots, by name (``NAME.png``)
GENERATIVE_PLOTS = ("generative",)


def generative_plot(rec: dict | None, objective: str, path: Path) -> Path | None:
    """Left: the training loss per epoch. Right: the training compositions at their latent means,
    coloured by the objective (a map of what the model learned); the title gives the target range
    the round sampled from."""
    if not rec or not rec.get("loss"):
        return None
    fig = Figure(figsize=(9.0, 3.8), dpi=120)
    ax = fig.add_subplot(1, 2, 1)
    every = rec.get("loss_every", 1)
    ax.plot(np.arange(len(rec["loss"])) * every + 1, rec["loss"])
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (cross-entropy + β·KL)")
    ax.set_title(f"conditional VAE, {rec.get('epochs')} epochs", fontsize=9)
    ax2 = fig.add_subplot(1, 2, 2)
    z = np.asarray(rec.get("latent") or [], float)
    if z.size:
        y = z[:, 1] if z.shape[1] > 1 else np.zeros(len(z))
        sc = ax2.scatter(z[:, 0], y, c=rec["latent_values"], cmap="viridis", s=14, edgecolors="k",
                         linewidths=0.2)
        fig.colorbar(sc, ax=ax2, label=label(objective))
    ax2.set_xlabel("latent 1")
    ax2.set_ylabel("latent 2" if z.size and z.shape[1] > 1 else "")
    lo, hi = rec["target"]
    ax2.set_title(f"latent map; sampled for {lo:.4g} to {hi:.4g}: {rec.get('valid', '?')} new of "
                  f"{rec.get('samples')}", fontsize=9)
    fig.tight_layout()
    return save(fig, path)
