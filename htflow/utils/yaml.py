"""Reading YAML files with every failure turned into one :class:`~htflow.errors.InputError`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from htflow.errors import InputError


def read_yaml(path: Path, what: str = "campaign file") -> Any:
    """Read a YAML file, turning every failure into one clear :class:`InputError`."""
    if not path.exists():
        raise InputError(f"{path}: no such {what}")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected a {what} (YAML)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read {what}: {exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{path}: malformed YAML{where}: {problem}") from None
