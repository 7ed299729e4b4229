"""What keeps one query from holding the store: a linear-time regular-expression engine and a
time budget.

``$regex`` conditions are run by RE2 (the ``google-re2`` wheel), whose matching time grows
linearly with the text whatever the pattern: ``(.*.*.*.*)*!`` or ``(a|aa)+$`` cannot backtrack
exponentially as they would in Python's ``re``. RE2 has no back-references and no look-arounds;
:func:`compile_linear` refuses those patterns with one message.

:func:`query_budget` sets a deadline for the queries made inside it (the server wraps each
request in one); the embedded store calls :func:`check_deadline` while it scans documents and
stops the query with :class:`~htflow.store.query.QueryError` once the budget is spent.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import time
from collections.abc import Iterator
from typing import Any

import re2
from bson.regex import Regex

from htflow.store.query import QueryError

#: ``$options`` letters RE2 can honour (``x``, free spacing, it cannot)
REGEX_OPTIONS = "ims"
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("htflow_query_deadline",
                                                                          default=None)


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # RE2 would print every refused pattern to stderr
    options.max_mem = 8 << 20
    return options


def compile_linear(pattern: str, flags: str = "") -> Any:
    """Compile ``pattern`` (with MongoDB ``$options`` letters) for RE2; :class:`QueryError`
    when RE2 cannot run it."""
    if set(flags) - set(REGEX_OPTIONS):
        raise QueryError(f"$options must be letters among {', '.join(REGEX_OPTIONS)}, got {flags!r}")
    text = f"(?{''.join(sorted(set(flags)))}){pattern}" if flags else pattern
    try:
        return re2.compile(text, _options())
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise QueryError(f"{pattern!r} is not a valid regular expression for the linear-time engine "
                         f"({reason}); back-references and look-arounds are not supported") from None


class _Matcher:
    """What mongomock's ``$regex`` needs of a compiled pattern: ``search`` (non-strings never match)."""

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled

    def search(self, item: Any) -> Any:
        return self.compiled.search(item) if isinstance(item, str) else None


class LinearRegex(Regex):
    """A ``$regex`` value that mongomock's filter engine matches with RE2 (through ``try_compile``)."""

    def try_compile(self) -> Any:
        flags = self.flags  # bson keeps the letters as ``re`` flag bits
        letters = flags if isinstance(flags, str) else "".join(
            letter for letter, bit in (("i", re.I), ("m", re.M), ("s", re.S)) if flags & bit)
        return _Matcher(compile_linear(self.pattern, letters))


def linear_filter(criteria: Any) -> Any:
    """A copy of a filter whose ``$regex`` conditions run on RE2 (``$options`` folded in)."""
    if isinstance(criteria, list):
        return [linear_filter(c) for c in criteria]
    if not isinstance(criteria, dict):
        return criteria
    out = {k: linear_filter(v) for k, v in criteria.items() if k != "$options"}
    if isinstance(criteria.get("$regex"), str):
        options = criteria.get("$options", "")
        out["$regex"] = LinearRegex(criteria["$regex"], options if isinstance(options, str) else "")
    elif "$options" in criteria:
        out["$options"] = criteria["$options"]
    return out


def has_regex(criteria: Any) -> bool:
    """Whether a filter has a ``$regex`` anywhere."""
    if isinstance(criteria, dict):
        return "$regex" in criteria or any(has_regex(v) for v in criteria.values())
    if isinstance(criteria, list):
        return any(has_regex(v) for v in criteria)
    return False


@contextlib.contextmanager
def query_budget(seconds: float | None) -> Iterator[None]:
    """Queries made inside stop with :class:`QueryError` after ``seconds`` (None: no limit)."""
    token = _deadline.set(None if seconds is None else time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def check_deadline() -> None:
    """Raise :class:`QueryError` when the current query budget is spent."""
    deadline = _deadline.get()
    if deadline is not None and time.monotonic() > deadline:
        raise QueryError("the query ran out of its time budget; narrow the filter (an indexed field "
                         "such as campaign, status or elements) or ask for fewer documents")
