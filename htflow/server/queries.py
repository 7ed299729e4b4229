"""Checking the API's queries: filter, fields, sort and paging, each bounded, one message per problem."""

from __future__ import annotations

import json
from typing import Any

from htflow.settings import get_settings
from htflow.store.filters import check_filter
from htflow.store.query import QueryError, check_field

COLLECTIONS = ("results", "candidates", "materials")
MAX_SKIP = 1_000_000
MAX_FILTER_CHARS = 10_000
HEAVY_FIELDS = ("structure", "input_structure")  # left out of lists unless asked for by name


class BadQuery(ValueError):
    """Answered with 400 and this message."""


def parse_query(filter: str | None, fields: str | None, sort: str | None, limit: int, skip: int) -> dict:
    """Check every part of a query; raise :class:`BadQuery` naming the first problem."""
    max_limit = get_settings().api_max_limit
    if not 0 <= limit <= max_limit:
        raise BadQuery(f"limit must be between 0 and {max_limit}, got {limit}")
    if not 0 <= skip <= MAX_SKIP:
        raise BadQuery(f"skip must be between 0 and {MAX_SKIP}, got {skip}")
    crit: Any = {}
    if filter:
        if len(filter) > MAX_FILTER_CHARS:
            raise BadQuery(f"filter is longer than {MAX_FILTER_CHARS} characters")
        try:
            crit = json.loads(filter)
        except json.JSONDecodeError as exc:
            raise BadQuery(f"filter is not valid JSON ({exc.msg} at column {exc.colno})") from None
    try:
        check_filter(crit)
        field_list = [check_field(f.strip()) for f in fields.split(",") if f.strip()] if fields else None
        sort_spec = {}
        for s in (sort or "").split(","):
            if s.strip():
                sort_spec[check_field(s.strip().lstrip("-+"))] = -1 if s.strip().startswith("-") else 1
    except QueryError as exc:
        raise BadQuery(str(exc)) from None
    return {"criteria": crit, "properties": field_list, "sort": sort_spec or None, "limit": limit,
            "skip": skip}
