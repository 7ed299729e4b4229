"""Figures without pyplot or a display, and the wording of axes and numbers shared by every plot.

Figures are made with matplotlib's object interface (:class:`matplotlib.figure.Figure`), so
drawing a report never touches pyplot's global state or the backend of a notebook that imported
htflow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from htflow.schemas.calculators import UNITS


def figure(figsize: tuple[float, float] = (6.4, 4.8), dpi: int = 120) -> tuple[Figure, Any]:
    """A new figure and its one axes."""
    fig = Figure(figsize=figsize, dpi=dpi)
    return fig, fig.add_subplot()


def save(fig: Figure, path: Path) -> Path:
    """Write ``fig`` to ``path`` (folders made as needed) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def label(objective: str, unit: str | None = None) -> str:
    """An axis label for an objective with its unit (``unit``, htflow's own properties' units, eV/atom
    for energies)."""
    unit = unit or UNITS.get(objective) or ("eV/atom" if "energy" in objective else None)
    return objective.replace("_", " ") + (f" ({unit})" if unit else "")


def fmt(v: Any, digits: int = 4) -> str:
    """A number for a table cell; an em dash for none."""
    if v is None:
        return "—"
    return f"{v:.{digits}g}" if isinstance(v, float) else str(v)
