"""Wording helpers for messages."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def suggest(word: str, options: Iterable[object]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``options``, or an empty string."""
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
