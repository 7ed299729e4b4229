"""The campaign database: named collections on one backend.

Collections
-----------
``campaigns``  one document per campaign: config, rounds, references, best so far.
``candidates`` one per (campaign, composition key): status proposed / running / done / failed.
``results``    one per (campaign, composition key): composition, structure, energies,
               properties, timings, calculator metadata, error if any.
``jobs``       jobflow job outputs (the campaign's ``JobStore``).
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from jobflow import JobStore
from maggma.core import Store
from maggma.stores import GridFSStore, MemoryStore
from pymongo.errors import ConfigurationError, OperationFailure, PyMongoError, ServerSelectionTimeoutError
from pymongo.uri_parser import parse_uri

from htflow.errors import InputError, StoreError
from htflow.schemas.config import StoreConfig
from htflow.schemas.documents import COLLECTIONS, JOBS_DATA, KEYS
from htflow.settings import get_settings
from htflow.store.connections import backup, quick_check
from htflow.store.large import OffloadingMongoStore
from htflow.store.sqlite import SQLiteStore

DB_FILE = "htflow.sqlite"
INDEXES = {
    "candidates": ["campaign", "status", "round"],
    "results": ["campaign", "status", "round", "elements", "formation_energy_per_atom",
                "energy_per_atom", "nelements"],
    "jobs": ["index", "name"],
    "materials": ["elements", "nelements", "formation_energy_per_atom", "seen_in"],
    "imported": ["campaign", "file_sha256"],
}  # fmt: skip


def redact(uri: str) -> str:
    """Hide credentials in a connection string."""
    return re.sub(r"(://)[^@/]*@", r"\1***@", uri)


def check_store_config(cfg: StoreConfig) -> None:
    """Refuse an unusable store description without touching anything."""
    if cfg.backend == "embedded":
        path = Path(cfg.path)
        if path.exists() and not path.is_dir():
            raise InputError(f"store.path: {cfg.path!r} exists and is not a folder")
        parent = next((p for p in [path, *path.parents] if p.exists()), None)
        if parent is not None and not _writable(parent):
            raise InputError(f"store.path: cannot write under {str(parent)!r}")
    elif cfg.backend == "mongodb":
        uri = cfg.uri or ""
        if not uri.startswith(("mongodb://", "mongodb+srv://")):
            raise InputError(
                f"store.uri: {redact(uri)!r} is not a MongoDB URI; allowed: mongodb://host[:port]/ "
                "or mongodb+srv://host/"
            )

        try:
            # +srv would resolve DNS; its syntax is the same as a plain URI's.
            parse_uri(uri.replace("mongodb+srv://", "mongodb://", 1))
        except Exception as exc:  # pymongo raises InvalidURI, ValueError, ConfigurationError
            raise InputError(f"store.uri: {redact(uri)!r} is not a valid MongoDB URI ({exc})") from None


def mongo_error(exc: Exception, uri: str) -> str:
    """One line for a MongoDB failure: the hosts (never the credentials) and what to check."""
    try:
        nodes = parse_uri(uri.replace("mongodb+srv://", "mongodb://", 1))["nodelist"]
        hosts = ", ".join(f"{h}:{p}" for h, p in nodes)
    except Exception:  # an unparsable URI is refused earlier; keep the message whatever happens
        hosts = redact(uri)
    if isinstance(exc, ServerSelectionTimeoutError):
        return (f"cannot reach MongoDB at {hosts} within {get_settings().mongo_timeout_seconds:g} s; check "
                "that the server runs, the URI and the network (HTFLOW_MONGO_TIMEOUT_SECONDS to wait longer)")
    if isinstance(exc, OperationFailure) and exc.code in (13, 18):
        return (f"MongoDB at {hosts} refused the credentials or the access (code {exc.code}); check the "
                "URI's user and password")
    if isinstance(exc, ConfigurationError):
        return f"MongoDB URI for {hosts}: {redact(str(exc).splitlines()[0])}"
    first = redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return f"MongoDB at {hosts}: {type(exc).__name__}: {first[:200]}"


def _writable(path: Path) -> bool:

    return os.access(path, os.W_OK)


def make_store(cfg: StoreConfig, collection: str, key: str) -> Store:
    """One maggma Store for a collection on the configured backend."""
    if cfg.backend == "embedded":

        return SQLiteStore(Path(cfg.path).resolve() / DB_FILE, collection, key=key)
    if cfg.backend == "mongodb":
        ms = round(1000 * get_settings().mongo_timeout_seconds)
        client = {"serverSelectionTimeoutMS": ms, "connectTimeoutMS": ms, "appname": "htflow"}
        if collection == JOBS_DATA:  # jobflow's additional store of large outputs: GridFS, as jobflow does
            return GridFSStore.from_uri(cfg.uri, collection, database=cfg.database, key=key, compression=True,
                                        mongoclient_kwargs=client)
        blobs = GridFSStore.from_uri(cfg.uri, f"{collection}_blobs", database=cfg.database, key="blob_uuid",
                                     compression=True, mongoclient_kwargs=client)
        return OffloadingMongoStore.from_uri(cfg.uri, collection, database=cfg.database, key=key,
                                             mongoclient_kwargs=client, blobs=blobs)

    return MemoryStore(collection_name=f"htflow_{collection}", key=key)


class CampaignDB:
    """The collections of one store configuration, connected together."""

    def __init__(self, cfg: StoreConfig):
        self.cfg = cfg
        self.stores: dict[str, Store] = {c: make_store(cfg, c, KEYS[c]) for c in COLLECTIONS}
        self._depth = 0

    @property
    def location(self) -> str:
        """Where the data is, safe to print."""
        if self.cfg.backend == "embedded":
            return str(Path(self.cfg.path) / DB_FILE)
        if self.cfg.backend == "mongodb":
            return f"MongoDB database {self.cfg.database!r} at {redact(self.cfg.uri or '')}"
        return "memory (not persistent)"

    @property
    def file(self) -> Path | None:
        """The embedded store's SQLite file (None for other backends)."""
        return Path(self.cfg.path) / DB_FILE if self.cfg.backend == "embedded" else None

    def integrity(self) -> list[str]:
        """SQLite's full ``integrity_check`` of the embedded file, plus a read of every document;
        an empty list when the store is whole (other backends: nothing to check here)."""
        if self.file is None:
            return []
        try:  # a connection of its own: the shared ones refuse a damaged file on opening
            conn = sqlite3.connect(f"file:{self.file}?mode=ro", uri=True)
            try:
                problems = quick_check(conn, full=True)
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            return [str(exc)]
        if problems:
            return problems
        for name, store in self.stores.items():
            try:
                store.connect()
                for _ in store.query({}):
                    pass
            except Exception as exc:  # a document that cannot be decoded is a finding, not a crash
                problems.append(f"{name}: {type(exc).__name__}: {exc}")
        return problems

    def backup(self, dest: Path) -> int:
        """Copy the embedded store, live or not, into the new folder ``dest`` (SQLite's online backup
        API: consistent even while a campaign writes); returns the pages copied."""
        if self.file is None:
            raise InputError(f"backup copies the embedded store; {self.location} is backed up with "
                             "its own tools (mongodump for MongoDB)")
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise InputError(f"{dest} exists and is not an empty folder; give a new folder for the copy")
        if not self.file.exists():
            raise InputError(f"no htflow store at {self.file}")
        dest.mkdir(parents=True, exist_ok=True)
        return backup(self.file, dest / DB_FILE)

    def exists(self) -> bool:
        """Whether the store holds data already (without creating it)."""
        if self.file is not None:
            if self.file.is_symlink() and not self.file.exists():
                raise StoreError(f"{self.file} is a symbolic link that leads nowhere (a loop or a missing "
                                 "target); point it at the store file or remove it")
            return self.file.exists()
        return True

    def connect(self) -> CampaignDB:
        """Connect every collection and make sure the indexes exist (re-entrant)."""
        self._depth += 1
        if self._depth > 1:
            return self
        try:
            for name, store in self.stores.items():
                store.connect()
                for field in INDEXES.get(name, []):
                    store.ensure_index(field)
        except PyMongoError as exc:
            self._depth -= 1
            raise StoreError(mongo_error(exc, self.cfg.uri or "")) from None
        except BaseException:
            self._depth -= 1
            raise
        return self

    def close(self) -> None:
        """Disconnect every collection (when the outermost user is done)."""
        self._depth = max(0, self._depth - 1)
        if self._depth or self.cfg.backend == "memory":  # closing a memory store loses it, and a
            return  # mongomock client cannot be reopened: it lives as long as this object
        for store in self.stores.values():
            with contextlib.suppress(Exception):
                store.close()

    def __enter__(self) -> CampaignDB:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def campaigns(self) -> Store:
        return self.stores["campaigns"]

    @property
    def candidates(self) -> Store:
        return self.stores["candidates"]

    @property
    def materials(self) -> Store:
        """One document per material across campaigns (``htflow build``)."""
        return self.stores["materials"]

    @property
    def results(self) -> Store:
        return self.stores["results"]

    def job_store(self) -> JobStore:
        """The jobflow JobStore for evaluation outputs."""
        return JobStore(self.stores["jobs"], additional_stores={"data": self.stores["jobs_data"]})

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Writes that land together or not at all (embedded backend; no-op elsewhere)."""
        results = self.stores["results"]
        if hasattr(results, "transaction"):
            with results.transaction():
                yield
        else:
            yield

    def collection(self, name: str) -> Store:
        """A collection by name, for queries."""
        if name not in self.stores or name == "jobs_data":
            allowed = ", ".join(c for c in COLLECTIONS if c != "jobs_data")
            raise InputError(f"--collection: unknown collection {name!r}; allowed: {allowed}")
        return self.stores[name]
