"""Query plans of the embedded store: a MongoDB filter, sort and projection as one SQL statement.

Filters on indexed fields become lookups of the multikey index table; what
cannot be translated is checked in Python afterwards (mongomock's filter
engine), and then sort, skip and limit are done in Python too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from maggma.core import Sort

from htflow.store.query import Part, QueryError, Translation, check_field, translate


class Tables(NamedTuple):
    """SQL names of one collection's tables."""

    docs: str
    index: str
    #: the (doc_id, field) index of the index table, for per-row probes
    by_doc: str


def order_parts(parts: list[Part], tables: Tables,
                estimate: Callable[[str, list], int]) -> tuple[str | None, list]:
    """AND the index conditions, driving from the most selective one.

    SQLite would materialise every ``id IN (subquery)``; with several
    conditions, the smallest lookup (by a capped count) drives and the other
    lookups become per-row ``EXISTS`` probes of the (doc_id, field) index.
    """
    lookups = [p for p in parts if p.lookup]
    if len(parts) < 2 or not lookups:
        return Translation(parts).sql, Translation(parts).params

    def size(p: Part) -> int:
        return estimate(f"SELECT COUNT(*) FROM (SELECT 1 FROM {tables.index} WHERE {p.lookup} LIMIT 20000)",
                        p.params)

    driver = min(lookups, key=size)
    probe = (f"EXISTS (SELECT 1 FROM {tables.index} INDEXED BY {tables.by_doc} "
             "WHERE doc_id = docs.id AND ")
    ordered = [driver] + [Part(f"{probe}{p.lookup})", p.params) if p.lookup else p
                          for p in parts if p is not driver]
    return Translation(ordered).sql, Translation(ordered).params


def _order_by(items: list[tuple[str, int]], index: str) -> tuple[str, list]:
    terms, params = [], []
    for k, direction in items:
        d = "DESC" if direction < 0 else "ASC"
        for col in ("t", "value"):
            terms.append(f"(SELECT {col} FROM {index} WHERE doc_id = docs.id AND field = ?) {d}")
            params.append(k)
    return ", ".join([*terms, "id"]), params


def plan_query(criteria: dict | None, properties: dict | list | None, sort: dict[str, Sort | int] | None,
               skip: int, limit: int, tables: Tables, indexed: set[str], multikey: set[str],
               estimate: Callable[[str, list], int]) -> tuple[str, list, bool, list[str] | None, bool]:
    """Plan a query.

    Returns the SQL and its parameters, whether rows must be checked against
    the filter in Python, the projection read in SQL (or None), and whether
    sort, skip and limit were done in SQL.
    """
    criteria = criteria or {}
    if not isinstance(criteria, dict):
        raise QueryError(f"filter must be a JSON object, got {type(criteria).__name__}")
    tr = translate(criteria, indexed, multikey, tables.index)
    check = bool(criteria) and not tr.exact
    where_sql, params = order_parts(tr.parts, tables, estimate)
    where = f" WHERE {where_sql}" if where_sql else ""
    items = [(check_field(k), v.value if isinstance(v, Sort) else int(v)) for k, v in (sort or {}).items()]
    sortable = all(k in indexed and k not in multikey for k, _ in items)
    order, order_params, sort_done = "id", [], False
    if items and sortable and not check:
        (order, order_params), sort_done = _order_by(items, tables.index), True
    # Projections of plain include-lists are read from the JSON in SQL.
    pushed = None
    if (isinstance(properties, list | dict) and properties and not check and (sort_done or not items)
            and all(bool(v) for v in (properties.values() if isinstance(properties, dict) else [1]))):
        pushed = [check_field(p) for p in properties]
    cols = ", ".join(["doc -> ?"] * len(pushed)) if pushed else "doc"
    sql = f"SELECT id, {cols} FROM {tables.docs} AS docs{where} ORDER BY {order}"
    params = (list(pushed) if pushed else []) + params + order_params
    in_sql = (sort_done or not items) and not check
    if in_sql and (limit or skip):
        sql += " LIMIT ? OFFSET ?"
        params += [limit if limit else -1, skip]
    return sql, params, check, pushed, in_sql
