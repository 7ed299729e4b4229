"""Names to objects: ``package.module:object`` import paths and ``importlib.metadata`` entry points.

Everything a campaign file names (calculator, sampler, surrogate, featurizer,
acquisition) is found in this order: htflow's own registry, an entry point of
an installed package in the group ``htflow.<kind>`` (for example
``[project.entry-points."htflow.calculators"] mycalc = "mypkg.calc:SPEC"``),
then a ``package.module:object`` import path.
"""

from __future__ import annotations

import importlib
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from htflow.errors import InputError

#: entry-point groups, one per kind of plug-in
GROUPS = ("calculators", "samplers", "surrogates", "featurizers", "acquisitions")


def import_object(path: str, what: str) -> Any:
    """Import ``package.module:object``; raise :class:`InputError` naming ``what``."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise InputError(f"{what}: {path!r} is not an import path of the form package.module:object")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(f"{what}: cannot import module {module_name!r} ({exc})") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InputError(f"{what}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def _group(kind: str) -> str:
    if kind not in GROUPS:
        raise ValueError(f"unknown plug-in kind {kind!r}; kinds: {', '.join(GROUPS)}")
    return f"htflow.{kind}"


def plugin_names(kind: str) -> list[str]:
    """Names that installed packages register for ``kind`` (entry points ``htflow.<kind>``)."""
    return sorted({ep.name for ep in entry_points(group=_group(kind))})


def resolve(kind: str, name: str, what: str) -> Any | None:
    """The object an entry point or import path ``name`` stands for, or None when it is neither.

    An entry point that cannot be loaded is an :class:`InputError` naming the package.
    """
    for ep in entry_points(group=_group(kind)):
        if ep.name == name:
            try:
                return ep.load()
            except Exception as exc:  # a broken plug-in: any error of its import is reported as such
                raise InputError(f"{what}: the plug-in {name!r} ({ep.value}) cannot be loaded: "
                                 f"{type(exc).__name__}: {exc}") from None
    if ":" in name:
        return import_object(name, what)
    return None


def allow_local_modules(folder: Path) -> None:
    """Make modules in ``folder`` (a campaign file's own folder) importable by ``module:object`` paths,
    here and in worker processes started from here (``PYTHONPATH``)."""
    where = str(folder.resolve())
    if where not in sys.path:
        sys.path.append(where)  # after the installed packages: a local file never shadows one
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if where not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([*paths, where])
