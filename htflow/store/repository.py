"""The queries on a campaign's documents that the loop, the CLI, the report and the server share.

:class:`CampaignRepository` reads and writes one campaign's documents in a
:class:`~htflow.store.db.CampaignDB`; it knows the collections and the
statuses but nothing of calculators, executors or models, so a read-only
reader (``htflow status``, the report, the server) uses it without building a
campaign.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from htflow.errors import InputError
from htflow.schemas.documents import ENTRY_KEY, CampaignDoc, CandidateDoc, ResultDoc, Status
from htflow.store.db import CampaignDB
from htflow.utils.text import suggest

#: what generators and plots need of a result (besides its objectives): no structures
SUMMARY_FIELDS = ["key", "round", "status", "composition", "counts", "created_at", "configurations"]


def now() -> datetime:
    """The time stamps of stored documents (UTC)."""
    return datetime.now(UTC)


class CampaignRepository:
    """One campaign's documents in a store.

    Parameters
    ----------
    db
        The campaign database.
    name
        The campaign's name.
    """

    def __init__(self, db: CampaignDB, name: str):
        self.db, self.name = db, name

    # -- the campaign document ---------------------------------------------------------------
    def doc(self) -> CampaignDoc | None:
        """The campaign document, or None before the campaign was first run."""
        with self.db:
            return self.db.campaigns.query_one({"name": self.name})

    def save_doc(self, doc: CampaignDoc) -> None:
        """Write the campaign document (stamping ``updated_at``)."""
        doc["updated_at"] = now()
        self.db.campaigns.update(doc, key="name")

    # -- candidates ----------------------------------------------------------------------------
    def known_keys(self) -> set[str]:
        """Keys of every candidate this campaign has proposed (pruned ones are not proposed)."""
        crit = {"campaign": self.name, "status": {"$in": [s.value for s in Status.proposed_ever()]}}
        return {d["key"] for d in self.db.candidates.query(crit, ["key"])}

    def candidates(self, status: Status | Iterable[Status] | None = None, rnd: int | None = None,
                   properties: list[str] | None = None) -> list[CandidateDoc]:
        """This campaign's candidates (of a status or statuses, of a round)."""
        crit: dict[str, Any] = {"campaign": self.name}
        if isinstance(status, str):
            crit["status"] = Status(status).value
        elif status is not None:
            crit["status"] = {"$in": [Status(s).value for s in status]}
        if rnd is not None:
            crit["round"] = rnd
        return list(self.db.candidates.query(crit, properties))

    def write_candidates(self, docs: list[CandidateDoc] | CandidateDoc) -> None:
        """Insert or replace candidates (keyed by campaign and composition key)."""
        self.db.candidates.update(docs, key=ENTRY_KEY)

    def forget_pruned(self, keys: list[str]) -> None:
        """Remove the pruned records of ``keys`` (the model thinks better of them now)."""
        self.db.candidates.remove_docs({"campaign": self.name, "status": Status.PRUNED.value,
                                        "key": {"$in": keys}})

    def counts(self) -> dict[str, int]:
        """Candidates by status (every status, zero where none)."""
        with self.db:
            return {s.value: self.db.candidates.count({"campaign": self.name, "status": s.value})
                    for s in Status}

    # -- results ---------------------------------------------------------------------------------
    def results(self, status: Status | None = None, properties: list[str] | None = None,
                rnd: int | None = None, keys: list[str] | None = None) -> list[ResultDoc]:
        """This campaign's result documents (only ``properties``, if given)."""
        crit: dict[str, Any] = {"campaign": self.name}
        if status:
            crit["status"] = Status(status).value
        if rnd is not None:
            crit["round"] = rnd
        if keys is not None:
            crit["key"] = {"$in": list(keys)}
        with self.db:
            return list(self.db.results.query(crit, properties))

    def summaries(self, objectives: Iterable[str]) -> list[dict]:
        """Results without structures: what generators and plots need."""
        return self.results(properties=list(dict.fromkeys([*SUMMARY_FIELDS, *objectives])))

    def result(self, key: str, properties: list[str] | None = None) -> ResultDoc | None:
        """One result by composition key."""
        with self.db:
            return self.db.results.query_one({"campaign": self.name, "key": key}, properties)

    def write_results(self, docs: list[ResultDoc] | ResultDoc) -> None:
        """Insert or replace results (keyed by campaign and composition key)."""
        self.db.results.update(docs, key=ENTRY_KEY)

    def count_results(self) -> int:
        """How many results (done or failed) the campaign has."""
        with self.db:
            return self.db.results.count({"campaign": self.name})

    def best(self, objective: str, goal: str, n: int = 10) -> list[ResultDoc]:
        """The ``n`` best done results by ``objective``."""
        direction = 1 if goal == "minimize" else -1
        crit = {"campaign": self.name, "status": Status.DONE.value, objective: {"$ne": None}}
        with self.db:
            return list(self.db.results.query(crit, sort={objective: direction}, limit=n))


def campaign_names(db: CampaignDB) -> list[str]:
    """Names of every campaign in the store."""
    with db:
        return sorted(db.campaigns.distinct("name"))


def explained_round(rounds: list[dict], number: int | None) -> dict:
    """The round to explain: ``number``, or the latest with an explanation; an error naming the ones
    there are otherwise."""
    have = sorted((r for r in rounds if r.get("explain")), key=lambda r: r["round"])
    if not have:
        raise InputError("no round of this campaign has an explanation yet: explanations come with the "
                         "surrogate model's rounds (search.sampler: surrogate or generative, "
                         "search.surrogate.explain: true), after the initial design")
    if number is None:
        return have[-1]
    for r in have:
        if r["round"] == number:
            return r
    raise InputError(f"round {number} has no explanation; rounds with one: "
                     f"{', '.join(str(r['round']) for r in have)}")


def explanation(entry: dict, objective: str | None, objectives: list[str]) -> dict:
    """A round's explanation of ``objective`` (None: the first of ``objectives``, the campaign's); an error
    naming the objectives it explains otherwise. Several objectives: the first is the round's ``explain``,
    the others are in ``explain_objectives``."""
    first = entry["explain"].get("objective", objectives[0])
    if objective in (None, first):
        return {**entry["explain"], "objective": first}
    others = entry.get("explain_objectives") or {}
    if objective in others:
        return others[objective]
    have = [first, *others]
    raise InputError(f"round {entry['round']} has no explanation of {objective!r}{suggest(objective, have)}; "
                     f"objectives it explains: {', '.join(have)}")
