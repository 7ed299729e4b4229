"""Plots of a campaign, written to files (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path


def convergence_plot(results: list[dict], objective: str, goal: str, path: Path, title: str) -> Path | None:
    """Best-so-far of ``objective`` against evaluations (rounds marked); returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in results if r.get("status") == "done" and r.get(objective) is not None]
    if not done:
        return None
    ordered = sorted(results, key=lambda r: (r.get("round", 0), str(r.get("created_at"))))
    xs, best, vals, xv = [], [], [], []
    current = None
    for i, r in enumerate(ordered, 1):
        v = r.get(objective) if r.get("status") == "done" else None
        if v is not None:
            vals.append(v)
            xv.append(i)
            if current is None or (v < current if goal == "minimize" else v > current):
                current = v
        if current is not None:
            xs.append(i)
            best.append(current)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    ax.scatter(xv, vals, s=12, alpha=0.5, label="evaluated")
    ax.step(xs, best, where="post", color="C3", label="best so far")
    ax.set_xlabel("evaluations")
    unit = " (eV/atom)" if "energy" in objective else ""
    ax.set_ylabel(objective.replace("_", " ") + unit)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
