"""Checking a MongoDB-style filter before it reaches a store: one validator for the CLI, the API
and anything else that takes a filter from a user.

The whole tree is walked: every operator at any depth (inside ``$and``/``$or``/``$nor``,
``$not``, ``$elemMatch``, and the documents inside ``$in``/``$all`` lists) must be on the
whitelist, and each operator's value must have the shape MongoDB gives it. The tree is bounded
in depth, in size, in string length and in integer range. Regular expressions must compile for
RE2, the linear-time engine the embedded store runs them on (:mod:`htflow.store.limits`), so
``(.*.*)*`` or ``(a|aa)+`` cost no more than ``a+``; back-references and look-arounds are refused.
"""

from __future__ import annotations

from typing import Any

from pymongo.errors import PyMongoError

from htflow.store.limits import REGEX_OPTIONS, compile_linear
from htflow.store.query import QueryError

#: Operators accepted anywhere in a filter. Anything else (``$where``, ``$function``,
#: ``$expr``, ``$jsonSchema``...) is refused.
ALLOWED_OPERATORS = frozenset(
    {
        "$and", "$or", "$nor", "$not",
        "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin",
        "$exists", "$regex", "$options", "$size", "$all", "$elemMatch", "$type",
        "$mod",
    }
)  # fmt: skip
#: what running a checked filter may still raise (mongomock and MongoDB refuse some combinations
#: the checker lets through); callers answer these as a bad query, never as a crash
QUERY_FAILURES = (QueryError, ValueError, TypeError, PyMongoError, NotImplementedError)
MAX_DEPTH = 8
MAX_NODES = 1000
MAX_STRING = 1000
MAX_REGEX = 200
INT64 = 2**63
#: BSON type names ``$type`` accepts
TYPE_NAMES = frozenset({"double", "string", "object", "array", "bool", "null", "int", "long", "decimal",
                        "number", "date", "objectId", "binData", "regex", "timestamp"})


class _Walk:
    """Counts the nodes of one filter while its parts are checked."""

    def __init__(self) -> None:
        self.nodes = 0

    def count(self, path: str, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise QueryError(f"filter: more than {MAX_NODES} values; make the filter smaller")
        if depth > MAX_DEPTH:
            raise QueryError(f"{path}: nested deeper than {MAX_DEPTH} levels")

    def filter(self, criteria: Any, path: str, depth: int) -> None:
        """A filter document: field names and top-level logical operators."""
        self.count(path, depth)
        if not isinstance(criteria, dict):
            raise QueryError(f"{path} must be a JSON object, got {type(criteria).__name__}")
        for key, value in criteria.items():
            if not isinstance(key, str) or not key or len(key) > MAX_STRING:
                raise QueryError(f"{path}: keys must be non-empty strings, got {key!r}")
            if key in ("$and", "$or", "$nor"):
                if not isinstance(value, list) or not value:
                    raise QueryError(f"{path}.{key} must be a non-empty list of filters")
                for i, sub in enumerate(value):
                    self.filter(sub, f"{path}.{key}[{i}]", depth + 1)
            elif key.startswith("$"):
                _refuse_operator(key, path)
                raise QueryError(f"{path}: {key} belongs inside a field's condition, e.g. "
                                 f'{{"field": {{"{key}": ...}}}}')
            else:
                self.condition(value, f"{path}.{key}", depth + 1)

    def condition(self, value: Any, path: str, depth: int) -> None:
        """A field's condition: a value to equal, or a document of operators."""
        self.count(path, depth)
        if isinstance(value, dict) and any(isinstance(k, str) and k.startswith("$") for k in value):
            if "$options" in value and "$regex" not in value:
                raise QueryError(f"{path}: $options needs $regex beside it")
            for key, sub in value.items():
                self.operator(key, sub, value, f"{path}.{key}" if isinstance(key, str) else path, depth + 1)
        else:
            self.value(value, path, depth)

    def operator(self, key: Any, sub: Any, siblings: dict, path: str, depth: int) -> None:
        if not isinstance(key, str) or not key.startswith("$"):
            raise QueryError(f"{path}: mix of operators and fields; use either {{'$op': value}} "
                             "or a plain value")
        _refuse_operator(key, path)
        if key in ("$and", "$or", "$nor"):
            raise QueryError(f"{path}: {key} combines whole filters, so it belongs at the top level, e.g. "
                             f'{{"{key}": [{{"a": 1}}, {{"b": 2}}]}}')
        if key in ("$in", "$nin", "$all"):
            if not isinstance(sub, list):
                raise QueryError(f"{path} must be a list, got {_short(sub)}")
            for i, item in enumerate(sub):
                if isinstance(item, dict) and key == "$all":
                    self.condition(item, f"{path}[{i}]", depth + 1)
                else:
                    self.value(item, f"{path}[{i}]", depth + 1)
        elif key == "$elemMatch":
            if not isinstance(sub, dict):
                raise QueryError(f"{path} must be a JSON object (a filter on the array's elements)")
            if any(k.startswith("$") for k in sub if isinstance(k, str)):
                self.condition(sub, path, depth)
            else:
                self.filter(sub, path, depth)
        elif key == "$not":
            if not isinstance(sub, dict) or not sub or not all(isinstance(k, str) and k.startswith("$")
                                                               for k in sub):
                raise QueryError(f"{path} must be a JSON object of operators, e.g. {{\"$gt\": 0}}")
            self.condition(sub, path, depth)
        elif key == "$regex":
            _check_regex(sub, siblings.get("$options"), path)
        elif key == "$options":
            if not isinstance(sub, str) or set(sub) - set(REGEX_OPTIONS):
                letters = ", ".join(REGEX_OPTIONS)
                raise QueryError(f"{path} must be letters among {letters}, got {_short(sub)}")
        else:
            _check_scalar_operator(key, sub, path)
            self.value(sub, path, depth)

    def value(self, value: Any, path: str, depth: int) -> None:
        """A plain value: strings and integers bounded; nested documents walked for operators."""
        self.count(path, depth)
        if isinstance(value, str) and len(value) > MAX_STRING:
            raise QueryError(f"{path}: a string longer than {MAX_STRING} characters")
        if isinstance(value, int) and not isinstance(value, bool) and not -INT64 <= value < INT64:
            raise QueryError(f"{path}: {_short(value)} is outside the 64-bit integer range")
        if isinstance(value, float) and value != value:
            raise QueryError(f"{path}: NaN cannot be compared")
        if isinstance(value, list):
            for i, item in enumerate(value):
                self.value(item, f"{path}[{i}]", depth + 1)
        elif isinstance(value, dict):
            for k, item in value.items():
                if isinstance(k, str) and k.startswith("$"):
                    _refuse_operator(k, path)
                self.value(item, f"{path}.{k}", depth + 1)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _refuse_operator(key: str, path: str) -> None:
    if key not in ALLOWED_OPERATORS:
        allowed = ", ".join(sorted(ALLOWED_OPERATORS))
        raise QueryError(f"{path}: operator {key!r} is not allowed; allowed: {allowed}")


def _check_scalar_operator(key: str, sub: Any, path: str) -> None:
    """The shapes of ``$size``, ``$exists``, ``$type`` and ``$mod``."""
    if key == "$size" and (isinstance(sub, bool) or not isinstance(sub, int) or not 0 <= sub < INT64):
        raise QueryError(f"{path} must be a whole number of at least 0, got {_short(sub)}")
    if key == "$exists" and not isinstance(sub, bool | int):
        raise QueryError(f"{path} must be true or false, got {_short(sub)}")
    names = sub if isinstance(sub, list) and sub else [sub]
    if key == "$type" and not all(isinstance(t, str) and t in TYPE_NAMES for t in names):
        raise QueryError(f"{path}: unknown type {_short(sub)}; allowed: {', '.join(sorted(TYPE_NAMES))}")
    if key == "$mod":
        numbers = isinstance(sub, list) and len(sub) == 2 and all(
            isinstance(v, int | float) and not isinstance(v, bool) and abs(v) < INT64 for v in sub)
        if not numbers or sub[0] == 0:
            raise QueryError(f"{path} must be [divisor, remainder] with a divisor other than 0, "
                             f"got {_short(sub)}")


def _check_regex(pattern: Any, options: Any, path: str) -> None:
    if not isinstance(pattern, str) or len(pattern) > MAX_REGEX:
        raise QueryError(f"{path} must be a string of at most {MAX_REGEX} characters, got {_short(pattern)}")
    try:
        compile_linear(pattern, options if isinstance(options, str) else "")
    except QueryError as exc:
        raise QueryError(f"{path}: {exc}") from None


def check_filter(criteria: Any, path: str = "filter") -> None:
    """Refuse a filter that is not a document of fields and whitelisted, well-formed operators,
    or that is too deep, too large or too slow to run; :class:`QueryError` names the place."""
    _Walk().filter(criteria, path, 0)
