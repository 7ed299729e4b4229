"""A maggma ``Store`` over a Python dict: what a unit of work writes while it runs
(:mod:`htflow.execution.engine`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pydash
from maggma.core import Store
from mongomock.filtering import filter_applies


class DocStore(Store):
    """A maggma ``Store`` over a Python dict: what a unit writes while it runs.

    Lookups by the key fields (``uuid`` [+ ``index``] for job documents,
    ``blob_uuid`` for data blobs) are dictionary lookups; any other filter is
    evaluated by mongomock's filter engine, so query semantics are MongoDB's.
    """

    def __init__(self, key: str = "uuid", **kwargs: Any):
        self._docs: dict[tuple, dict] = {}
        self._by_key: dict[Any, list[dict]] = defaultdict(list)
        super().__init__(key=key, **kwargs)

    @property
    def name(self) -> str:
        return f"docs:{id(self)}"

    def connect(self, force_reset: bool = False) -> None:
        if force_reset:
            self.reset()

    def reset(self) -> None:
        """Forget everything (the documents already handed out are kept by whoever holds them)."""
        self._docs = {}
        self._by_key = defaultdict(list)

    def close(self) -> None:
        pass

    @property
    def _collection(self) -> dict:
        return self._docs

    def docs(self) -> list[dict]:
        """Everything written, in write order."""
        return list(self._docs.values())

    def count(self, criteria: dict | None = None, hint: dict | None = None) -> int:
        return sum(1 for _ in self.query(criteria))

    def update(self, docs: list[dict] | dict, key: list | str | None = None, **kwargs: Any) -> None:
        if isinstance(docs, dict):
            docs = [docs]
        fields = [key] if isinstance(key, str) else list(key or [self.key])
        for doc in docs:
            ident = tuple(doc.get(f) for f in fields)
            old = self._docs.get(ident)
            if old is not None:
                self._by_key[old.get(self.key)].remove(old)
            self._docs[ident] = doc
            self._by_key[doc.get(self.key)].append(doc)

    def query(
        self,
        criteria: dict | None = None,
        properties: dict | list | None = None,
        sort: dict | None = None,
        skip: int = 0,
        limit: int = 0,
        **kwargs: Any,
    ) -> Iterator[dict]:
        criteria = criteria or {}
        own = criteria.get(self.key)
        if isinstance(own, str | int):
            rest = {k: v for k, v in criteria.items() if k != self.key}
            docs = [d for d in self._by_key.get(own, ()) if all(d.get(k) == v for k, v in rest.items())] \
                if all(not isinstance(v, dict) for v in rest.values()) else None
        else:
            docs = None
        if docs is None:

            docs = [d for d in self._docs.values() if filter_applies(criteria, d)]
        for name, direction in reversed(list((sort or {}).items())):
            docs.sort(key=lambda d, n=name: (d.get(n) is not None, d.get(n)), reverse=direction < 0)
        docs = docs[skip:]
        if limit:
            docs = docs[:limit]
        if properties:
            yield from self._project(docs, properties)
        else:
            yield from docs

    def distinct(self, field: str, criteria: dict | None = None, all_exists: bool = False) -> list:
        return list({repr(d.get(field)): d.get(field) for d in self.query(criteria)}.values())

    def groupby(self, keys: Any, criteria: Any = None, properties: Any = None, sort: Any = None,
                skip: int = 0, limit: int = 0) -> Iterator:
        """Documents grouped by the values of ``keys`` (dotted paths): ``(group, docs)`` pairs; with
        ``properties``, the documents hold those and the keys (as maggma's stores do)."""

        keys = [keys] if isinstance(keys, str) else list(keys)
        names = [] if not properties else (properties if isinstance(properties, list)
                                           else [p for p, v in properties.items() if v])
        groups: dict[str, tuple[dict, list[dict]]] = {}
        for doc in self.query(criteria, properties=None, sort=sort):
            values = {k: pydash.get(doc, k) for k in keys}
            group = groups.setdefault(repr(sorted(values.items())), ({}, []))
            for k, v in values.items():
                pydash.set_(group[0], k, v)
            group[1].append(doc if not properties else next(self._project([doc], [*names, *keys])))
        items = list(groups.values())[skip:]
        yield from items[:limit] if limit else items

    @staticmethod
    def _project(docs: list[dict], properties: Any) -> Iterator[dict]:
        names = properties if isinstance(properties, list) else [p for p, v in properties.items() if v]
        for d in docs:
            yield {p: d[p] for p in names if p in d}

    def remove_docs(self, criteria: dict) -> None:
        for doc in list(self.query(criteria)):
            for ident, d in list(self._docs.items()):
                if d is doc:
                    del self._docs[ident]
            self._by_key[doc.get(self.key)].remove(doc)

    def ensure_index(self, key: str, unique: bool = False) -> bool:
        return True

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)
