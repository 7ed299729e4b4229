"""Documents to and from the JSON kept in the embedded store (datetimes tagged so they come back as
datetimes), and MongoDB-style projections of a document."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import orjson

_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS
_DATE_TAG = '{"$date":'

def _default(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return {"$date": obj.isoformat()}
    if hasattr(obj, "as_dict"):
        return obj.as_dict()
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    if hasattr(obj, "item"):  # numpy scalar types not covered by orjson
        return obj.item()
    raise TypeError(f"cannot store a value of type {type(obj).__name__}")


def dumps(doc: Any) -> bytes:
    """Serialise a document (datetimes tagged so that they come back as datetimes)."""
    return orjson.dumps(doc, default=_default, option=_OPTS)


def _untag(node: Any) -> Any:
    if isinstance(node, dict):
        if len(node) == 1 and "$date" in node:
            return datetime.fromisoformat(node["$date"])
        return {k: _untag(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_untag(v) for v in node]
    return node


def loads(text: str) -> Any:
    """Inverse of :func:`dumps` (documents are kept as JSON text)."""
    doc = orjson.loads(text)
    return _untag(doc) if _DATE_TAG in text else doc


def project(doc: dict, properties: dict | list | None) -> dict:
    """The fields of ``doc`` a MongoDB projection (include or exclude list/dict) keeps."""
    if not properties:
        return doc
    if isinstance(properties, list):
        properties = {p: 1 for p in properties}
    include = [k for k, v in properties.items() if v]
    exclude = [k for k, v in properties.items() if not v]
    if include:
        out: dict = {}
        for key in include:
            node, dst, parts = doc, out, key.split(".")
            for i, part in enumerate(parts):
                if not isinstance(node, dict) or part not in node:
                    break
                if i == len(parts) - 1:
                    dst[part] = node[part]
                else:
                    node = node[part]
                    dst = dst.setdefault(part, {})
        return out
    out = dict(doc)
    for key in exclude:
        parts, node = key.split("."), out
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node = None
                break
            node[part] = dict(node[part])
            node = node[part]
        if isinstance(node, dict):
            node.pop(parts[-1], None)
    return out
