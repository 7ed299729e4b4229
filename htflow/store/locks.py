"""One driver per campaign: a lock document (owner host and pid, start, heartbeat) in the store.

A second ``htflow run`` of a campaign that another live process is running stops with a message
naming the owner. A lock is stale, and taken over with a message, when its owner ran on this host
and that process is gone (exact), or when its heartbeat is older than
``HTFLOW_LOCK_STALE_SECONDS`` (another host: the only sign of life there is the heartbeat, which
the driver refreshes whenever it stores a result). ``--force`` takes any lock.

Taking the lock is atomic on every backend. On the embedded store the read and the write happen
in one ``BEGIN IMMEDIATE`` transaction (one writer at a time across processes). On MongoDB (and
mongomock in memory) the write is a compare-and-swap: a new lock is inserted under a unique index
on the campaign name, and a stale lock is replaced only if it still carries the token that was
read (``replace_one({"name", "token"})``), so of two drivers that both found it stale, one wins
and the other is told who did.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psutil
from pymongo.errors import DuplicateKeyError

from htflow.errors import InputError
from htflow.schemas.documents import LOCKS
from htflow.settings import get_settings
from htflow.store.db import CampaignDB


class CampaignLocked(InputError):
    """Another driver is running this campaign."""


def _now() -> datetime:
    return datetime.now(UTC)


def _alive_here(owner: dict) -> bool | None:
    """Whether the owner's process is alive, if it ran on this host (None: another host)."""
    if owner.get("host") != socket.gethostname():
        return None
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        started = owner.get("process_started", 1e300)
        return psutil.pid_exists(pid) and psutil.Process(pid).create_time() <= started + 1e-3
    except psutil.Error:
        return False


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


class DriverLock:
    """The lock of one campaign, held by this process while it drives the campaign."""

    def __init__(self, db: CampaignDB, name: str):
        self.db, self.name = db, name
        self.store = db.collection(LOCKS)
        self.me = {"host": socket.gethostname(), "pid": os.getpid(),
                   "process_started": psutil.Process().create_time()}
        self.taken_over: dict | None = None
        self._beat = 0.0

    def stale(self, doc: dict) -> str | None:
        """Why a lock held by someone else may be taken over, or None when its owner may be alive."""
        owner = doc.get("owner") or {}
        alive = _alive_here(owner)
        if alive is False:
            return f"its driver (pid {owner.get('pid')} on this host) is gone"
        beat = _when(doc.get("heartbeat_at"))
        limit = get_settings().lock_stale_seconds
        if alive is None and (beat is None or _now() - beat > timedelta(seconds=limit)):
            return f"its driver on {owner.get('host')} has not been heard from for over {limit:g} s"
        return None

    def acquire(self, force: bool = False) -> None:
        """Take the lock, or raise :class:`CampaignLocked` naming the owner."""
        with self.db, self.db.transaction():
            doc = self.store.query_one({"name": self.name})
            if doc and doc.get("owner") and not self._mine(doc):
                why = "--force" if force else self.stale(doc)
                if why is None:
                    raise self._locked(doc)
                self.taken_over = {**doc["owner"], "reason": why}
            now = _now()
            new = {"name": self.name, "owner": self.me, "started_at": now, "heartbeat_at": now,
                   "token": uuid.uuid4().hex}
            if self.taken_over:
                new["taken_over_from"] = self.taken_over
            if not self._swap(doc, new):
                raise self._locked(self.store.query_one({"name": self.name}) or {})

    def _locked(self, doc: dict) -> CampaignLocked:
        o = doc.get("owner") or {}
        return CampaignLocked(
            f"campaign {self.name!r} is being run by pid {o.get('pid')} on {o.get('host')} "
            f"(since {doc.get('started_at')}, last heard {doc.get('heartbeat_at')}); wait for it "
            "to finish, stop it, or use --force if it is gone")

    def _swap(self, old: dict | None, new: dict) -> bool:
        """Write ``new`` in place of ``old`` only if the lock is still ``old``; False if another
        driver changed it since it was read."""
        if self.db.cfg.backend == "embedded":  # inside the IMMEDIATE transaction: nobody else writes
            self.store.update(new, key="name")
            return True
        coll = self.store._collection  # pymongo (or mongomock) collection: atomic single-document ops
        coll.create_index("name", unique=True)
        if old is None:
            try:
                coll.insert_one(dict(new))
            except DuplicateKeyError:
                return False
            return True
        same = {"name": self.name, "token": old["token"]} if old.get("token") else \
            {"name": self.name, "owner": old.get("owner"), "heartbeat_at": old.get("heartbeat_at")}
        return coll.replace_one(same, new).matched_count == 1

    def _mine(self, doc: dict) -> bool:
        owner = doc.get("owner") or {}
        return owner.get("host") == self.me["host"] and owner.get("pid") == self.me["pid"]

    def heartbeat(self, every: float = 10.0) -> None:
        """Refresh the heartbeat (at most every ``every`` seconds)."""
        now = _now()
        if now.timestamp() - self._beat < every:
            return
        self._beat = now.timestamp()
        with self.db, self.db.transaction():
            doc = self.store.query_one({"name": self.name})
            if doc and self._mine(doc):
                doc.pop("_id", None)
                doc["heartbeat_at"] = now
                self.store.update(doc, key="name")

    def release(self) -> None:
        """Give the lock up (only if it is still this process's)."""
        with self.db, self.db.transaction():
            doc = self.store.query_one({"name": self.name})
            if doc and self._mine(doc):
                self.store.remove_docs({"name": self.name})
