"""Mongo-style filters for the embedded store.

A filter is first translated, where it can be, into SQL over the store's
multikey index table (one row per indexed field and scalar value, like a
MongoDB multikey index). The translation is *exact* when every condition in
the filter could be expressed in SQL; otherwise it selects a superset and the
rows are checked again with mongomock's filter engine, so the semantics are
always MongoDB's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Type brackets stored in the index table's ``t`` column. Comparisons only
# ever happen within one bracket, as in MongoDB.
T_NUMBER, T_STRING, T_BOOL, T_DATE = 1, 2, 3, 4

_RANGE_SQL = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_SAFE_FIELD = re.compile(r"^[A-Za-z0-9_@\-]+(\.[A-Za-z0-9_@\-]+)*$")

class QueryError(ValueError):
    """A filter, sort or projection that cannot be run."""


def check_field(name: str) -> str:
    """Return ``name`` if it is a plain dotted field path, else raise QueryError."""
    if not isinstance(name, str) or not _SAFE_FIELD.match(name):
        raise QueryError(f"invalid field name {name!r}: use letters, digits, '_', '-' and dots")
    return name


def bracket(value: Any) -> tuple[int, Any] | None:
    """Return the index type bracket and SQL value of a scalar, or None."""
    if isinstance(value, bool):
        return T_BOOL, int(value)
    if isinstance(value, int | float):
        if value != value:  # NaN is not orderable in SQL
            return None
        return T_NUMBER, value
    if isinstance(value, str):
        return T_STRING, value
    if isinstance(value, datetime):
        return T_DATE, value.isoformat()
    return None


def extract(doc: Any, path: str) -> Iterator[Any]:
    """Yield the scalar values at a dotted ``path``, expanding arrays like MongoDB."""
    parts = path.split(".")

    def walk(node: Any, i: int) -> Iterator[Any]:
        if i == len(parts):
            if isinstance(node, list):
                for item in node:
                    if not isinstance(item, dict | list):
                        yield item
            elif not isinstance(node, dict):
                yield node
            return
        part = parts[i]
        if isinstance(node, dict):
            if part in node:
                yield from walk(node[part], i + 1)
        elif isinstance(node, list):
            if part.isdigit() and int(part) < len(node):
                yield from walk(node[int(part)], i + 1)
            for item in node:
                if isinstance(item, dict):
                    yield from walk(item, i)

    yield from walk(doc, 0)


def is_multikey_value(doc: Any, path: str) -> bool:
    """Whether an array lies anywhere along ``path`` in ``doc``."""
    node = doc
    for part in path.split("."):
        if isinstance(node, list):
            return True
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return isinstance(node, list)


@dataclass(frozen=True)
class Part:
    """One AND-ed term of a translated filter.

    ``sql`` is a condition on ``docs.id``. For a single index lookup, ``lookup``
    is its condition on the index table alone (``field = ? AND ...``, same
    parameters), so the store can choose how to run it (driver or probe).
    """

    sql: str
    params: list
    lookup: str | None = None


def index_lookup(table: str, name: str, cond: str, params: list) -> Part:
    """The term "some index row of field ``name`` meets ``cond``"."""
    lookup = f"field = ? AND {cond}"
    return Part(f"id IN (SELECT doc_id FROM {table} WHERE {lookup})", [name, *params], lookup)


@dataclass
class Translation:
    """SQL for a filter: AND-ed terms over ``docs.id``, and whether it is exact."""

    parts: list[Part] = field(default_factory=list)
    exact: bool = True

    @property
    def sql(self) -> str | None:
        """The WHERE condition (all parts AND-ed), or None."""
        return " AND ".join(p.sql for p in self.parts) if self.parts else None

    @property
    def params(self) -> list[Any]:
        """Parameters of :attr:`sql`, in order."""
        return [v for p in self.parts for v in p.params]


def translate(
    criteria: dict, indexed: set[str], multikey: set[str], table: str = "idx"
) -> Translation:
    """Translate a filter into a condition on ``docs.id`` using the index table.

    Parameters
    ----------
    criteria
        A MongoDB filter.
    indexed
        Fields that have rows in the index table.
    multikey
        Indexed fields that have held an array in at least one document.
    table
        The index table's (quoted) name.
    """
    parts: list[Part] = []
    exact = True
    for key, value in criteria.items():
        if key == "$and":
            for sub in value:
                t = translate(sub, indexed, multikey, table)
                exact &= t.exact
                parts.extend(t.parts)
        elif key == "$or":
            subs = [translate(sub, indexed, multikey, table) for sub in value]
            if all(s.sql for s in subs):
                sql = "(" + " OR ".join(f"({s.sql})" for s in subs) + ")"
                parts.append(Part(sql, [v for s in subs for v in s.params]))
                exact &= all(s.exact for s in subs)
            else:
                exact = False
        elif key.startswith("$") or key not in indexed:
            exact = False
        else:
            fparts, ok = _field_condition(key, value, key in multikey, table)
            exact &= ok and bool(fparts)
            parts.extend(fparts)
    return Translation(parts, exact)


def _in_term(arg: Any) -> tuple[str, list] | None:
    """The index condition of ``$in`` (values grouped by type bracket), or None if not translatable."""
    brs = [bracket(v) for v in arg] if isinstance(arg, list) else [None]
    if not arg or any(b is None for b in brs):
        return None
    groups: dict[int, list] = {}
    for t, v in brs:  # type: ignore[misc]
        groups.setdefault(t, []).append(v)
    ors, p = [], []
    for t, vs in groups.items():
        ors.append(f"(t = ? AND value IN ({','.join('?' * len(vs))}))")
        p.extend([t, *vs])
    return "(" + " OR ".join(ors) + ")", p


def _field_condition(
    name: str, value: Any, multikey: bool, table: str
) -> tuple[list[Part], bool]:
    """Terms for one field's condition; returns (parts, exact)."""
    if not isinstance(value, dict) or not any(k.startswith("$") for k in value):
        b = bracket(value)
        if b is None:
            return [], False
        return [index_lookup(table, name, "t = ? AND value = ?", list(b))], True

    exact = True
    eq_parts: list[tuple[str, list]] = []
    range_parts: list[tuple[str, list]] = []
    range_t: int | None = None
    for op, arg in value.items():
        if op == "$eq":
            b = bracket(arg)
            if b is None:
                exact = False
                continue
            eq_parts.append(("t = ? AND value = ?", list(b)))
        elif op == "$all" and isinstance(arg, list) and arg:
            brs = [bracket(v) for v in arg]
            if any(b is None for b in brs):
                exact = False
                continue
            eq_parts.extend(("t = ? AND value = ?", list(b)) for b in brs)
        elif op in _RANGE_SQL:
            b = bracket(arg)
            if b is None or b[0] == T_BOOL or (range_t is not None and range_t != b[0]):
                exact = False
                continue
            range_t = b[0]
            range_parts.append((f"value {_RANGE_SQL[op]} ?", [b[1]]))
        elif op == "$in":
            term = _in_term(arg)
            if term is None:
                exact = False
                continue
            eq_parts.append(term)
        else:
            exact = False

    parts = [index_lookup(table, name, cond, p) for cond, p in eq_parts]
    if range_parts:
        if multikey:
            # Each bound may be met by a different array element (MongoDB semantics).
            for cond, p in range_parts:
                parts.append(index_lookup(table, name, f"t = ? AND {cond}", [range_t, *p]))
        else:
            cond = " AND ".join(c for c, _ in range_parts)
            values = [v for _, p in range_parts for v in p]
            parts.append(index_lookup(table, name, f"t = ? AND {cond}", [range_t, *values]))
    return parts, exact and bool(parts)
