"""The embedded on-disk store: a maggma ``Store`` over one SQLite file.

Why not maggma's ``MontyStore``: measured here it upserts about 110
documents/s and answers every filter by scanning (docs/store-benchmark.md).
This store keeps documents as JSON in SQLite (WAL mode, so readers never block
the writer and a crash never leaves a half-written document) and maintains a
*multikey* index table: one row per indexed field and scalar value, arrays
expanded, exactly as MongoDB indexes them. Filters on indexed fields become
index lookups; whatever cannot be translated is checked by mongomock's filter
engine, so query semantics are MongoDB's in every case.

Several collections share one database file, so a result and its candidate's
status can be written in one transaction (:meth:`SQLiteStore.transaction`).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from maggma.core import Sort, Store
from mongomock.filtering import filter_applies, resolve_sort_key

from htflow.store.codec import dumps, loads, project
from htflow.store.connections import close_all, connect_file
from htflow.store.limits import check_deadline, has_regex, linear_filter
from htflow.store.planning import Tables, order_parts, plan_query
from htflow.store.query import (
    QueryError,
    bracket,
    check_field,
    extract,
    is_multikey_value,
    translate,
)


def _matcher(criteria: dict | None) -> Any:
    """mongomock's filter engine on ``criteria``, with any ``$regex`` run by RE2."""
    crit = linear_filter(criteria) if has_regex(criteria) else (criteria or {})
    return lambda doc: filter_applies(crit, doc)


class SQLiteStore(Store):
    """A maggma Store kept in a SQLite file, with MongoDB filter semantics.

    Parameters
    ----------
    path
        The database file (created with its folder on first connect).
    collection_name
        The collection (a pair of tables) inside that file.
    key
        The store's main key (unique per document).
    """

    def __init__(self, path: str | Path, collection_name: str, key: str = "task_id", **kwargs: Any):
        self.path = str(path)
        self.collection_name = check_field(collection_name).replace(".", "_")
        self.kwargs = kwargs
        self._conn: sqlite3.Connection | None = None
        self._indexed: set[str] = set()
        self._multikey: set[str] = set()
        self._keysets: set[str] = set()
        super().__init__(key=key, **kwargs)

    # -- maggma plumbing ---------------------------------------------------
    @property
    def name(self) -> str:
        return f"sqlite://{self.path}#{self.collection_name}"

    @property
    def _collection(self) -> SQLiteStore:
        if self._conn is None:
            raise RuntimeError("SQLiteStore is not connected: call connect() first")
        return self

    def _table(self, suffix: str = "") -> str:
        return f'"{self.collection_name}{suffix}"'

    def connect(self, force_reset: bool = False) -> None:
        if self._conn is not None and not force_reset:
            return
        self._conn = connect_file(self.path)
        docs, idx, keys, meta = (self._table(s) for s in ("", "__idx", "__keys", "__meta"))
        self._conn.executescript(
            f"""
            CREATE TABLE IF NOT EXISTS {docs} (id INTEGER PRIMARY KEY, doc TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS {idx} (field TEXT NOT NULL, t INTEGER NOT NULL,
                value NOT NULL, doc_id INTEGER NOT NULL);
            CREATE INDEX IF NOT EXISTS "{self.collection_name}__idx_fv" ON {idx} (field, t, value);
            CREATE INDEX IF NOT EXISTS "{self.collection_name}__idx_doc" ON {idx} (doc_id, field);
            CREATE TABLE IF NOT EXISTS {keys} (keyset TEXT NOT NULL, keyval BLOB NOT NULL,
                doc_id INTEGER NOT NULL, PRIMARY KEY (keyset, keyval)) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS "{self.collection_name}__keys_doc" ON {keys} (doc_id);
            CREATE TABLE IF NOT EXISTS {meta} (kind TEXT NOT NULL, name TEXT NOT NULL,
                PRIMARY KEY (kind, name)) WITHOUT ROWID;
            """
        )
        self._load_meta()
        self.ensure_index(self.key)

    def _load_meta(self) -> None:
        rows = self._collection._conn.execute(f"SELECT kind, name FROM {self._table('__meta')}").fetchall()
        self._indexed = {n for k, n in rows if k == "index"}
        self._multikey = {n for k, n in rows if k == "multikey"}
        self._keysets = {n for k, n in rows if k == "keyset"}

    def close(self) -> None:
        # The connection is shared per file and thread; it is closed by close_all().
        self._conn = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SQLiteStore):
            return False
        return (Path(self.path).resolve(), self.collection_name) == (
            Path(other.path).resolve(),
            other.collection_name,
        )

    def __hash__(self) -> int:
        return hash((str(Path(self.path).resolve()), self.collection_name))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes (to this and other collections of the same file) atomically."""
        conn = self._collection._conn
        if conn.in_transaction:
            yield
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if conn.in_transaction:  # SQLite has rolled back itself on some errors (a full disk)
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- indexes -----------------------------------------------------------
    def ensure_index(self, key: str, unique: bool = False) -> bool:
        """Index ``key`` (dotted paths allowed); ``unique`` makes it an upsert key."""
        check_field(key)
        conn = self._collection._conn
        with self.transaction():
            self._load_meta()
            if key not in self._indexed:
                rows, mk = [], False
                for doc_id, text in conn.execute(f"SELECT id, doc FROM {self._table()}"):
                    doc = loads(text)
                    rows.extend(self._index_rows(doc_id, doc, [key]))
                    mk |= is_multikey_value(doc, key)
                conn.executemany(f"INSERT INTO {self._table('__idx')} VALUES (?,?,?,?)", rows)
                self._add_meta("index", key)
                self._indexed.add(key)
                if mk:
                    self._add_meta("multikey", key)
                    self._multikey.add(key)
            if unique:
                self._ensure_keyset([key])
        return True

    def _add_meta(self, kind: str, name: str) -> None:
        self._conn.execute(
            f"INSERT OR IGNORE INTO {self._table('__meta')} VALUES (?, ?)", (kind, name)
        )

    def _ensure_keyset(self, keys: list[str]) -> str:
        keyset = ",".join(keys)
        if keyset not in self._keysets:
            rows = []
            for doc_id, text in self._conn.execute(f"SELECT id, doc FROM {self._table()}"):
                doc = loads(text)
                rows.append((keyset, self._keyval(doc, keys), doc_id))
            self._conn.executemany(
                f"INSERT OR IGNORE INTO {self._table('__keys')} VALUES (?,?,?)", rows
            )
            self._add_meta("keyset", keyset)
            self._keysets.add(keyset)
        return keyset

    @staticmethod
    def _keyval(doc: dict, keys: list[str]) -> bytes:
        vals = []
        for k in keys:
            node: Any = doc
            for part in k.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            vals.append(node)
        return dumps(vals)

    def _index_rows(self, doc_id: int, doc: dict, fields: Any) -> list[tuple]:
        rows = []
        for f in fields:
            if "." not in f:  # fast path: a top-level scalar
                v = doc.get(f)
                if not isinstance(v, dict | list):
                    b = bracket(v) if v is not None else None
                    if b is not None:
                        rows.append((f, b[0], b[1], doc_id))
                    continue
            seen = set()
            for value in extract(doc, f):
                b = bracket(value)
                if b is not None and b not in seen:
                    seen.add(b)
                    rows.append((f, b[0], b[1], doc_id))
        return rows

    # -- writes ------------------------------------------------------------
    def update(self, docs: list[dict] | dict, key: list | str | None = None) -> None:
        """Insert or replace documents, matching existing ones on ``key``."""
        if isinstance(docs, dict):
            docs = [docs]
        if not docs:
            return
        keys = key or self.key
        keys = [keys] if isinstance(keys, str) else list(keys)
        conn = self._collection._conn
        with self.transaction():
            self._load_meta()  # another store object or process may have added indexes
            for k in keys:
                if k not in self._indexed:
                    self.ensure_index(k)
            keyset = self._ensure_keyset(keys)
            # Later documents with the same key win, as with sequential upserts.
            by_key: dict[bytes, dict] = {}
            for d in docs:
                if self.validator is not None and not self.validator.is_valid(d):
                    if self.validator.strict:
                        raise ValueError(self.validator.validation_errors(d))
                    continue
                missing = [k for k in keys if k.split(".")[0] not in d]
                if missing:
                    raise KeyError(f"document has no key field {missing[0]!r}")
                by_key[self._keyval(d, keys)] = d
            keyvals = list(by_key)
            old_ids: dict[bytes, int] = {}
            for i in range(0, len(keyvals), 500):
                chunk = keyvals[i : i + 500]
                old_ids.update(
                    conn.execute(
                        f"SELECT keyval, doc_id FROM {self._table('__keys')} WHERE keyset = ? "
                        f"AND keyval IN ({','.join('?' * len(chunk))})",
                        [keyset, *chunk],
                    )
                )
            # A replaced document keeps its id (and so its place), as in MongoDB.
            self._delete_ids(list(old_ids.values()))
            row = conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {self._table()}").fetchone()
            next_id = max([row[0], *old_ids.values()]) + 1
            doc_rows, idx_rows, key_rows = [], [], []
            for kv, d in by_key.items():
                doc_id = old_ids.get(kv)
                if doc_id is None:
                    doc_id, next_id = next_id, next_id + 1
                doc_rows.append((doc_id, dumps(d).decode()))
                idx_rows.extend(self._index_rows(doc_id, d, self._indexed))
                key_rows.extend((ks, self._keyval(d, ks.split(",")), doc_id) for ks in self._keysets)
                for f in self._indexed - self._multikey:
                    if is_multikey_value(d, f):
                        self._add_meta("multikey", f)
                        self._multikey.add(f)
            conn.executemany(f"INSERT INTO {self._table()} VALUES (?, ?)", doc_rows)
            conn.executemany(f"INSERT INTO {self._table('__idx')} VALUES (?,?,?,?)", idx_rows)
            conn.executemany(
                f"INSERT OR IGNORE INTO {self._table('__keys')} VALUES (?,?,?)", key_rows
            )

    def _delete_ids(self, ids: list[int]) -> None:
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for table, col in (("", "id"), ("__idx", "doc_id"), ("__keys", "doc_id")):
                self._conn.execute(
                    f"DELETE FROM {self._table(table)} WHERE {col} IN ({marks})", chunk
                )

    def remove_docs(self, criteria: dict) -> None:
        """Remove the documents matching a filter."""
        with self.transaction():
            ids = [doc_id for doc_id, _ in self._select(criteria)]
            self._delete_ids(ids)

    # -- reads -------------------------------------------------------------
    def _tables(self) -> Tables:
        return Tables(self._table(), self._table("__idx"), f'"{self.collection_name}__idx_doc"')

    def _estimate(self, sql: str, params: list) -> int:
        return self._collection._conn.execute(sql, params).fetchone()[0]

    def _plan(self, criteria: dict | None, properties: dict | list | None = None,
              sort: dict[str, Sort | int] | None = None, skip: int = 0,
              limit: int = 0) -> tuple[str, list, bool, list[str] | None, bool]:
        """Plan a query (:func:`htflow.store.planning.plan_query`)."""
        self._load_meta()
        return plan_query(criteria, properties, sort, skip, limit, self._tables(), self._indexed,
                          self._multikey, self._estimate)

    def _select(self, criteria: dict | None) -> Iterator[tuple[int, dict]]:
        """Yield (id, doc) for matching documents in insertion order."""
        sql, params, check, _, _ = self._plan(criteria)
        matches = _matcher(criteria) if check else None
        for n, (doc_id, text) in enumerate(self._collection._conn.execute(sql, params)):
            if n % 256 == 255:
                check_deadline()
            doc = loads(text)
            if matches and not matches(doc):
                continue
            yield doc_id, doc

    def count(self, criteria: dict | None = None, hint: dict | None = None) -> int:
        """Number of documents matching a filter."""
        criteria = criteria or {}
        self._load_meta()
        idx = self._table("__idx")
        tr = translate(criteria, self._indexed, self._multikey, idx)
        if tr.exact:
            where, params = order_parts(tr.parts, self._tables(), self._estimate)
            sql = f"SELECT COUNT(*) FROM {self._table()} AS docs"
            if where:
                sql += f" WHERE {where}"
            return self._collection._conn.execute(sql, params).fetchone()[0]
        return sum(1 for _ in self._select(criteria))

    def query(
        self,
        criteria: dict | None = None,
        properties: dict | list | None = None,
        sort: dict[str, Sort | int] | None = None,
        skip: int = 0,
        limit: int = 0,
        hint: dict | None = None,
    ) -> Iterator[dict]:
        """Query documents with a MongoDB filter, projection, sort, skip and limit."""
        sql, params, check, pushed, in_sql = self._plan(criteria, properties, sort, skip, limit)
        rows = self._collection._conn.execute(sql, params)
        if pushed is not None:
            for row in rows:
                doc: dict = {}
                for path, text in zip(pushed, row[1:], strict=True):
                    if text is None:
                        continue
                    *parents, last = path.split(".")
                    node = doc
                    for part in parents:
                        node = node.setdefault(part, {})
                    node[last] = loads(text)
                yield doc
            return
        matches = _matcher(criteria) if check else None
        docs: Iterator[dict] = (
            doc
            for n, (_, text) in enumerate(rows)
            if (n % 256 != 255 or check_deadline() is None)
            and (doc := loads(text)) is not None and (not matches or matches(doc))
        )
        if in_sql:
            for doc in docs:
                yield project(doc, properties)
            return
        listed = list(docs)
        # Stable sorts from the last key to the first give a compound order.
        for k, v in reversed(list((sort or {}).items())):
            direction = v.value if isinstance(v, Sort) else int(v)
            listed.sort(key=lambda d, k=k: resolve_sort_key(k, d), reverse=direction < 0)
        stop = skip + limit if limit else None
        for doc in listed[skip:stop]:
            yield project(doc, properties)

    def groupby(
        self,
        keys: list[str] | str,
        criteria: dict | None = None,
        properties: dict | list | None = None,
        sort: dict[str, Sort | int] | None = None,
        skip: int = 0,
        limit: int = 0,
    ) -> Iterator[tuple[dict, list[dict]]]:
        """Group documents by the values of ``keys``."""
        keys = [keys] if isinstance(keys, str) else list(keys)
        if isinstance(properties, dict):
            properties = list(properties)
        props = (properties or []) + keys if properties else None
        groups: dict[bytes, tuple[dict, list[dict]]] = {}
        for doc in self.query(criteria, props, sort, skip, limit):
            group = project(doc, keys)
            groups.setdefault(dumps(group), (group, []))[1].append(doc)
        yield from groups.values()


__all__ = ["QueryError", "SQLiteStore", "close_all", "connect_file", "dumps", "loads"]
