"""MongoDB documents stay under the server's 16 MB limit: their largest fields go to GridFS.

jobflow keeps large job outputs out of its documents with additional stores
(GridFS on MongoDB); htflow's ``jobs_data`` collection is such a store. Result
documents hold a relaxed structure (and, with several decorations, their
values); a cell of tens of thousands of atoms, or a user Maker's output, can
pass the limit. :class:`OffloadingMongoStore` writes a document as it is when
its encoded size is under :data:`LIMIT_BYTES`; otherwise it moves its largest
top-level fields, one at a time, to a GridFS bucket (``<collection>_blobs``) and
leaves ``{"@gridfs": "<blob id>"}`` in their place. Queries put them back, so
every reader (campaign, API, export, OPTIMADE) sees the whole document.
Filters on a field that was moved do not match inside it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import orjson
from maggma.stores import GridFSStore, MongoStore

#: documents whose JSON is larger than this are split (the server refuses BSON over 16 MiB; BSON of
#: numbers is close to JSON's size, and the margin covers what maggma adds)
LIMIT_BYTES = 12 * 1024 * 1024
#: fields this small are never moved (they are what queries filter on)
MIN_FIELD_BYTES = 64 * 1024
REF = "@gridfs"


def _size(value: Any) -> int:
    return len(orjson.dumps(value, default=str, option=orjson.OPT_SERIALIZE_NUMPY))


class OffloadingMongoStore(MongoStore):
    """A MongoStore whose documents over :data:`LIMIT_BYTES` keep their largest fields in GridFS."""

    def __init__(self, *args: Any, blobs: GridFSStore | None = None, limit_bytes: int | None = None,
                 **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.blobs = blobs
        self.limit_bytes = limit_bytes or LIMIT_BYTES

    def connect(self, force_reset: bool = False) -> None:
        super().connect(force_reset=force_reset)
        if self.blobs is not None:
            self.blobs.connect(force_reset=force_reset)

    def close(self) -> None:
        if self.blobs is not None and self.blobs._coll is not None:
            self.blobs.close()
        super().close()

    def split(self, doc: dict, key: list[str]) -> tuple[dict, list[dict]]:
        """``doc`` with its largest fields replaced by references while it is over the limit, and the
        blobs to store (``{"blob_uuid", "data"}``). A blob's id is made of the document's key and the
        field's name, so rewriting the document replaces its blobs instead of adding more."""
        if _size(doc) <= self.limit_bytes:
            return doc, []
        sizes = {k: _size(v) for k, v in doc.items() if k != "_id"}
        out, blobs, total = dict(doc), [], sum(sizes.values())
        for name in sorted(sizes, key=sizes.get, reverse=True):
            if total <= self.limit_bytes or sizes[name] < MIN_FIELD_BYTES:
                break
            ident = orjson.dumps([self.collection_name, [doc.get(k) for k in key], name], default=str)
            blob = {"blob_uuid": hashlib.sha256(ident).hexdigest()[:32], "data": doc[name]}
            blobs.append(blob)
            out[name] = {REF: blob["blob_uuid"]}
            total -= sizes[name]
        return out, blobs

    def update(self, docs: list[dict] | dict, key: list | str | None = None) -> None:
        docs = docs if isinstance(docs, list) else [docs]
        if self.blobs is None:
            super().update(docs, key)
            return
        kept, blobs = [], []
        fields = [key] if isinstance(key, str) else list(key or [self.key])
        for d in docs:
            small, big = self.split(d, fields)
            kept.append(small)
            blobs += big
        if blobs:
            self.blobs.update(blobs, key="blob_uuid")
        super().update(kept, key)

    def query(self, criteria: dict | None = None, properties: dict | list | None = None,
              sort: dict | None = None, skip: int = 0, limit: int = 0) -> Iterator[dict]:
        for doc in super().query(criteria=criteria, properties=properties, sort=sort, skip=skip, limit=limit):
            yield self._whole(doc)

    def _whole(self, doc: dict) -> dict:
        refs = {k: v[REF] for k, v in doc.items() if isinstance(v, dict) and set(v) == {REF}}
        if not refs or self.blobs is None:
            return doc
        wanted = {"blob_uuid": {"$in": list(refs.values())}}
        found = {b["blob_uuid"]: b["data"] for b in self.blobs.query(wanted)}
        for name, ref in refs.items():
            if ref in found:
                doc[name] = found[ref]
        return doc
