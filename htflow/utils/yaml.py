"""Reading YAML files with every failure turned into one :class:`~htflow.errors.InputError`.

A campaign file is small and written by hand, so the reader refuses what no such file needs and
what could hang or exhaust the machine: files that are not regular files (``/dev/zero``) or are
larger than :data:`MAX_BYTES`; the same key twice in one mapping (the later value would silently
win); nesting deeper than :data:`MAX_DEPTH`; and aliases that expand to more than
:data:`MAX_VALUES` values (a 740-byte "billion laughs" file expands to 10^9). Only plain YAML
types are built (``yaml.SafeLoader``): no Python objects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from htflow.errors import InputError

MAX_BYTES = 1 << 20
MAX_DEPTH = 40
MAX_VALUES = 100_000


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} appears twice (lines {seen[key]} and {line}); keep one",
                        key_node.start_mark)
                seen[key] = line
            except TypeError:  # an unhashable key: SafeLoader's own message follows
                pass
        return super().construct_mapping(node, deep=deep)


def _size(data: Any, path: str) -> None:
    """Refuse data nested deeper than MAX_DEPTH or expanding to more than MAX_VALUES values
    (shared nodes, from aliases, counted once per use)."""
    sizes: dict[int, int] = {}

    def count(node: Any, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise InputError(f"{path}: nested deeper than {MAX_DEPTH} levels")
        if not isinstance(node, dict | list):
            return 1
        if id(node) in sizes:
            return sizes[id(node)]
        children = list(node.values()) if isinstance(node, dict) else node
        total = 1
        for child in children:
            total += count(child, depth + 1)
            if total > MAX_VALUES:
                raise InputError(f"{path}: expands to more than {MAX_VALUES} values (through YAML "
                                 "aliases?); a campaign file needs far fewer")
        sizes[id(node)] = total
        return total

    count(data, 0)


def read_yaml(path: Path, what: str = "campaign file") -> Any:
    """Read a YAML file, turning every failure into one clear :class:`InputError`."""
    try:
        if not path.exists():
            raise InputError(f"{path}: no such {what}")
        if path.is_dir():
            raise InputError(f"{path}: is a folder, expected a {what} (YAML)")
        if not path.is_file():
            raise InputError(f"{path}: is not a regular file (a device or a pipe?); expected a {what} (YAML)")
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError, RuntimeError) as exc:
        raise InputError(f"{path}: cannot read {what}: {exc}") from None
    if len(raw) > MAX_BYTES:
        raise InputError(f"{path}: larger than {MAX_BYTES >> 20} MiB; a {what} is a few kB of YAML")
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{path}: malformed YAML{where}: {problem}") from None
    except RecursionError:
        raise InputError(f"{path}: nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise InputError(f"{path}: a value cannot be read ({str(exc).split(';')[0]})") from None
    _size(data, str(path))
    return data
