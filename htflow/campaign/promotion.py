"""Multi-fidelity: each round's best (and most uncertain) screening results evaluated again with a
more expensive calculator, in a campaign of their own (``NAME.CALCULATOR``), resumably."""

from __future__ import annotations

import math
from typing import Any, Protocol

from htflow.campaign.rounds import sign
from htflow.schemas.config import CampaignConfig, ObjectiveConfig
from htflow.schemas.documents import CampaignDoc, CampaignState, CandidateDoc, Status
from htflow.store.repository import CampaignRepository, now


class Campaign(Protocol):
    """What promotion needs of a campaign (:class:`htflow.campaign.loop.Campaign` is one)."""

    name: str
    config: CampaignConfig
    objective: ObjectiveConfig
    repo: CampaignRepository
    promoted: Campaign | None

    def open(self) -> CampaignDoc: ...
    def references(self, doc: CampaignDoc) -> dict[str, float]: ...
    def known_keys(self) -> set[str]: ...
    def pending(self) -> list[CandidateDoc]: ...
    def evaluate(self, doc: CampaignDoc, rnd: int, batch: list[CandidateDoc], refs: dict[str, float],
                 progress: Any) -> None: ...


def promotion_choice(camp: Campaign, rnd: int) -> list[tuple[str, str]]:
    """The keys of round ``rnd`` to promote, with why: the best share by the objective, then the
    share the surrogate was least sure of (its std when it chose them). Deterministic."""
    p, obj = camp.config.promote, camp.objective.name
    # pure elements are left out: the promoted campaign computes them as its references anyway
    done = [r for r in camp.repo.results(Status.DONE, ["key", "counts", obj], rnd=rnd)
            if r.get(obj) is not None and len(r.get("counts") or {}) > 1]
    done.sort(key=lambda r: (sign(camp.objective) * float(r[obj]), r["key"]))
    chosen = [(r["key"], "best") for r in done[: math.ceil(p.best * len(done))]]
    if p.uncertain:
        keys = {r["key"] for r in done} - {k for k, _ in chosen}
        cands = [c for c in camp.repo.candidates(rnd=rnd, properties=["key", "prediction"])
                 if c["key"] in keys and (c.get("prediction") or {}).get("std") is not None]
        cands.sort(key=lambda c: (-float(c["prediction"]["std"]), c["key"]))
        chosen += [(c["key"], "uncertain") for c in cands[: math.ceil(p.uncertain * len(done))]]
    return chosen


def _new_candidates(camp: Campaign, child: Campaign, rnd: int, chosen: list[tuple[str, str]]) -> list[dict]:
    obj = camp.objective.name
    have = child.known_keys()
    screened = {r["key"]: r for r in camp.repo.results(Status.DONE, ["key", "counts", "composition", obj],
                                                        rnd=rnd)}
    new = []
    for key, why in chosen:
        if key in have:
            continue
        r = screened[key]
        new.append({"campaign": child.name, "key": key, "round": rnd, "status": Status.PROPOSED.value,
                    "counts": r["counts"], "composition": r["composition"], "proposed_at": now(),
                    "promoted_from": {"campaign": camp.name, "reason": why,
                                      "calculator": camp.config.calculator.name, obj: r.get(obj)}})
    return new


def promote(camp: Campaign, doc: CampaignDoc, rnd: int, progress: Any) -> None:
    """Evaluate round ``rnd``'s chosen results with the promoted calculator, in its own campaign
    (its own references, hull and results, labelled with its calculator); resumable."""
    child = camp.promoted
    cdoc = child.open()
    crefs = child.references(cdoc)
    chosen = promotion_choice(camp, rnd)
    new = _new_candidates(camp, child, rnd, chosen)
    if new:
        child.repo.write_candidates(new)
    batch = [c for c in child.pending() if c["round"] == rnd]
    if batch:
        child.evaluate(cdoc, rnd, batch, crefs, progress)
    promoted = {r["key"]: r for r in child.repo.results(properties=["key", "status"], rnd=rnd)}
    summary = next(r for r in doc["rounds"] if r["round"] == rnd)
    summary["promoted"] = {
        "campaign": child.name, "calculator": child.config.calculator.name, "complete": True,
        "keys": [k for k, _ in chosen], "done": sum(r["status"] == Status.DONE for r in promoted.values()),
        "failed": sum(r["status"] == Status.FAILED for r in promoted.values()),
    }
    doc["promoted_to"] = child.name
    camp.repo.save_doc(doc)
    cdoc = child.repo.doc()
    cdoc["promoted_from"] = camp.name
    cdoc["state"] = CampaignState.COMPLETE.value
    child.repo.save_doc(cdoc)
