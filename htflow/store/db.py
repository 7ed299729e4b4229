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
from collections.abc import Iterator
from pathlib import Path

from jobflow import JobStore
from maggma.core import Store
from maggma.stores import MemoryStore, MongoURIStore
from pymongo.uri_parser import parse_uri

from htflow.errors import InputError
from htflow.schemas.config import StoreConfig
from htflow.schemas.documents import COLLECTIONS, KEYS
from htflow.store.sqlite import SQLiteStore

DB_FILE = "htflow.sqlite"
INDEXES = {
    "candidates": ["campaign", "status", "round"],
    "results": ["campaign", "status", "round", "elements", "formation_energy_per_atom",
                "energy_per_atom", "nelements"],
    "jobs": ["index", "name"],
    "materials": ["elements", "nelements", "formation_energy_per_atom", "seen_in"],
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


def _writable(path: Path) -> bool:

    return os.access(path, os.W_OK)


def make_store(cfg: StoreConfig, collection: str, key: str) -> Store:
    """One maggma Store for a collection on the configured backend."""
    if cfg.backend == "embedded":

        return SQLiteStore(Path(cfg.path).resolve() / DB_FILE, collection, key=key)
    if cfg.backend == "mongodb":

        return MongoURIStore(cfg.uri, collection, database=cfg.database, key=key)

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

    def exists(self) -> bool:
        """Whether the store holds data already (without creating it)."""
        if self.cfg.backend == "embedded":
            return (Path(self.cfg.path) / DB_FILE).exists()
        return True

    def connect(self) -> CampaignDB:
        """Connect every collection and make sure the indexes exist (re-entrant)."""
        self._depth += 1
        if self._depth > 1:
            return self
        for name, store in self.stores.items():
            store.connect()
            for field in INDEXES.get(name, []):
                store.ensure_index(field)
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
