"""Checking the API's queries: filter, fields, sort and paging, each bounded, one message per problem."""

from __future__ import annotations

import json
import re
from typing import Any

from htflow.settings import get_settings
from htflow.store.query import QueryError, check_field, check_filter

COLLECTIONS = ("results", "candidates", "materials")
MAX_SKIP = 1_000_000
MAX_FILTER_CHARS = 10_000
MAX_DEPTH = 8
MAX_REGEX_CHARS = 200
HEAVY_FIELDS = ("structure", "input_structure")  # left out of lists unless asked for by name


class BadQuery(ValueError):
    """Answered with 400 and this message."""


def _depth(x: Any, level: int = 0) -> int:
    if isinstance(x, dict):
        return max((_depth(v, level + 1) for v in x.values()), default=level + 1)
    if isinstance(x, list):
        return max((_depth(v, level + 1) for v in x), default=level + 1)
    return level


def _check_regexes(x: Any) -> None:
    if isinstance(x, dict):
        for k, v in x.items():
            if k == "$regex":
                if not isinstance(v, str) or len(v) > MAX_REGEX_CHARS:
                    raise BadQuery(f"filter: $regex must be a string of at most {MAX_REGEX_CHARS} characters")
                try:
                    re.compile(v)
                except re.error as exc:
                    raise BadQuery(f"filter: $regex {v!r} is not a valid regular expression "
                                   f"({exc})") from None
            _check_regexes(v)
    elif isinstance(x, list):
        for v in x:
            _check_regexes(v)


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
        if _depth(crit) > MAX_DEPTH:
            raise BadQuery(f"filter is nested deeper than {MAX_DEPTH} levels")
    try:
        check_filter(crit)
        field_list = [check_field(f.strip()) for f in fields.split(",") if f.strip()] if fields else None
        sort_spec = {}
        for s in (sort or "").split(","):
            if s.strip():
                sort_spec[check_field(s.strip().lstrip("-+"))] = -1 if s.strip().startswith("-") else 1
    except QueryError as exc:
        raise BadQuery(str(exc)) from None
    _check_regexes(crit)
    return {"criteria": crit, "properties": field_list, "sort": sort_spec or None, "limit": limit,
            "skip": skip}
