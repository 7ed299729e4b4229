"""Experiment campaigns: a laboratory measures each round through worksheets.

``htflow run`` proposes a round, stores it, writes its worksheet
(``worksheets/NAME-round-R.csv`` and ``.xlsx`` beside the embedded store) and stops: the campaign
is *waiting*. The laboratory makes and measures the samples and ``htflow ingest`` records the
filled-in sheet (:func:`ingest`); a partial sheet is fine, the rest stays awaited. The next
``htflow run`` summarises the round and proposes the next once every sample of the round is in
(or, with ``--proceed-with-partial``, with what has arrived). A sample that could not be made is
recorded as failed with its reason: the feasibility model learns from it.

With ``options.oracle`` a table answers every round at once (:class:`~htflow.datasets.oracle.Oracle`),
so the same loop runs unattended in benchmarks and tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from htflow.campaign.rounds import update_best
from htflow.datasets.oracle import Oracle
from htflow.datasets.worksheets import at_formula, read_measurements, worksheet_table, write_worksheets
from htflow.errors import InputError
from htflow.execution.base import Outcome
from htflow.schemas.config import CampaignConfig
from htflow.schemas.documents import CampaignDoc, CandidateDoc, ResultDoc, Status
from htflow.store.db import CampaignDB
from htflow.store.locks import DriverLock
from htflow.store.repository import CampaignRepository, now


class Campaign(Protocol):
    """What an experiment round needs of a campaign (:class:`htflow.campaign.loop.Campaign` is one)."""

    name: str
    config: CampaignConfig
    repo: CampaignRepository
    proposer: Any

    def pending(self) -> list[CandidateDoc]: ...
    def known_keys(self) -> set[str]: ...
    def stop_reason(self, doc: CampaignDoc, remaining: int) -> str | None: ...
    def end_round(self, doc: CampaignDoc, rnd: int, refs: dict[str, float], progress: Any) -> None: ...
    def record(self, doc: CampaignDoc, cand: CandidateDoc, result: ResultDoc, progress: Any,
               outcome: Outcome) -> None: ...

#: the loop's step result when the campaign waits for measurements
WAITING = "waiting for measurements"
#: a worksheet's file name: NAME-round-R.csv (or .xlsx)
WORKSHEET_NAME = re.compile(r"^(?P<name>.+)-round-(?P<round>\d+)\.(csv|xlsx)$")


def worksheet_folder(cfg: CampaignConfig) -> Path:
    """Where the campaign's worksheets go: ``options.worksheets``, else ``worksheets/`` in the embedded
    store's folder (``htflow-worksheets/`` here for other stores)."""
    folder = cfg.calculator.options.get("worksheets")
    if folder:
        return Path(folder).expanduser()
    if cfg.store.backend == "embedded":
        return Path(cfg.store.path) / "worksheets"
    return Path("htflow-worksheets")


def worksheet_stem(name: str, rnd: int) -> str:
    return f"{name}-round-{rnd}"


def measurement_doc(cfg: CampaignConfig, cand: CandidateDoc, record: dict, source: dict) -> ResultDoc:
    """The result document of one sample: its measured values (or why it failed) and where they came from."""
    comp = cand["composition"]
    failed = record["status"] == "failed"
    doc: dict[str, Any] = {
        "campaign": cfg.name, "key": cand["key"], "round": cand["round"],
        "status": (Status.FAILED if failed else Status.DONE).value,
        "composition": comp, "counts": cand["counts"], "elements": sorted(comp), "nelements": len(comp),
        "formula": at_formula(comp), "prototype": "experiment",
        "calculator": {"name": "experiment", "method": source.get("method", "laboratory measurement")},
        "timings": {}, "error": record.get("note") if failed else None, "created_at": now(),
        "source": source, **record.get("values", {}), "properties": sorted(record.get("values", {})),
    }
    if record.get("note"):
        doc["note"] = record["note"]
    if record.get("uncertainty"):
        doc["uncertainty"] = record["uncertainty"]
    units = {o.name: o.unit for o in cfg.objectives if o.unit}
    if units:
        doc["units"] = units
    return doc  # type: ignore[return-value]


def _outcome(result: ResultDoc) -> Outcome:
    return Outcome(result["key"], None if result["error"] else {}, result["error"], 0.0)


def close_rounds(camp: Campaign, doc: CampaignDoc, progress: Any) -> None:
    """Summarise the rounds whose samples have all arrived since their summary (or that have none)."""
    if not doc["rounds"]:
        return
    cands = camp.repo.candidates(Status.proposed_ever(), properties=["round", "status"])
    per_round: dict[int, list[int]] = {}
    for c in cands:
        n = per_round.setdefault(c["round"], [0, 0])
        n[0] += 1
        n[1] += c["status"] in (Status.DONE, Status.FAILED)
    for r in sorted(doc["rounds"], key=lambda r: r["round"]):
        total, arrived = per_round.get(r["round"], [0, 0])
        if total and arrived == total and r.get("evaluated") != total:
            camp.end_round(doc, r["round"], {}, progress)


def _oracle(camp: Campaign) -> Oracle | None:
    path = camp.config.calculator.options.get("oracle")
    return Oracle(str(path), tuple(o.name for o in camp.config.objectives)) if path else None


def answer_from_oracle(camp: Campaign, doc: CampaignDoc, oracle: Oracle, pending: list[CandidateDoc],
                       progress: Any) -> None:
    """Record the oracle table's answer for every awaited sample, round by round."""
    for rnd in sorted({c["round"] for c in pending}):
        batch = [c for c in pending if c["round"] == rnd]
        if progress:
            progress.start_round(rnd, len(batch))
        source = {"oracle": Path(oracle.path).name, "method": "replayed from a table"}
        for cand in batch:
            answer = oracle.answer(cand["key"], cand["composition"])
            result = measurement_doc(camp.config, cand, answer, source)
            camp.record(doc, cand, result, progress, _outcome(result))
        close_rounds(camp, doc, progress)


def write_round_worksheets(camp: Campaign, doc: CampaignDoc, rnd: int) -> list[Path]:
    """Round ``rnd``'s worksheets (left as they are if written before)."""
    cfg = camp.config
    formats = list(cfg.calculator.options.get("formats") or ["csv", "xlsx"])
    folder, stem = worksheet_folder(cfg), worksheet_stem(cfg.name, rnd)
    if all((folder / f"{stem}.{fmt}").exists() for fmt in formats):  # every rerun while waiting
        return [folder / f"{stem}.{fmt}" for fmt in formats]
    cands = sorted(camp.repo.candidates(Status.proposed_ever(), rnd=rnd), key=lambda c: c["key"])
    summary = next((r for r in doc["rounds"] if r["round"] == rnd), {})
    mass = float(cfg.calculator.options.get("sample_mass_g", 10.0))
    table = worksheet_table(cands, list(cfg.objectives), mass, summary.get("phase"), cfg.search.sampler)
    return write_worksheets(table, folder, stem, formats)


def step(camp: Campaign, doc: CampaignDoc, progress: Any, proceed_with_partial: bool) -> str | None:
    """One step of an experiment campaign's loop: the stop reason, :data:`WAITING`, or None to go on."""
    close_rounds(camp, doc, progress)
    pending = camp.pending()
    oracle = _oracle(camp)
    if pending and oracle is not None:
        answer_from_oracle(camp, doc, oracle, pending, progress)
        return None
    if pending:
        latest = max(c["round"] for c in pending)
        summary = next((r for r in doc["rounds"] if r["round"] == latest), {})
        arrived = camp.repo.results(properties=["key"], rnd=latest)
        if not (proceed_with_partial and arrived and "partial" not in summary):
            return _wait(camp, doc, pending)
        summary["partial"] = {"arrived": len(arrived), "awaited": sum(c["round"] == latest for c in pending)}
        camp.end_round(doc, latest, {}, progress)
    known = camp.known_keys()
    remaining = camp.config.search.budget - len(known)
    reason = camp.stop_reason(doc, remaining)
    if reason:
        return reason
    rnd = max((r["round"] for r in doc["rounds"]), default=0) + 1
    batch = camp.proposer.propose(rnd, known, min(camp.config.search.batch_size, remaining), doc)
    if not batch:
        return camp.proposer.stop_reason_when_empty()
    if oracle is None:
        write_round_worksheets(camp, doc, rnd)
    return None


def _wait(camp: Campaign, doc: CampaignDoc, pending: list[CandidateDoc]) -> str:
    rounds = sorted({c["round"] for c in pending})
    sheets = [str(write_round_worksheets(camp, doc, r)[0]) for r in rounds]
    doc["awaiting"] = {"samples": len(pending), "rounds": rounds, "worksheets": sheets}
    return WAITING


@dataclass
class IngestSummary:
    """What ``htflow ingest`` recorded."""

    campaign: str
    measured: int = 0
    failed: int = 0
    already: int = 0
    #: samples of the campaign still awaited after this ingest, by round
    awaiting: dict[int, int] = field(default_factory=dict)


def campaign_for_file(path: Path, names: list[str], waiting: list[str]) -> str:
    """The campaign a worksheet belongs to: from its name (``NAME-round-R``), else the only campaign
    waiting for measurements."""
    m = WORKSHEET_NAME.match(path.name)
    if m and m["name"] in names:
        return m["name"]
    if len(waiting) == 1:
        return waiting[0]
    listed = ", ".join(waiting) or "none is waiting"
    raise InputError(f"{path.name}: which campaign? Name it with --campaign (campaigns waiting for "
                     f"measurements: {listed})")


def ingest(db: CampaignDB, cfg: CampaignConfig, path: Path, df: pd.DataFrame) -> IngestSummary:
    """Record a filled-in worksheet's measurements for campaign ``cfg`` (all or nothing)."""
    if not cfg.is_experiment:
        raise InputError(f"campaign {cfg.name!r} is computed (calculator {cfg.calculator.name}), not "
                         "measured; htflow ingest is for campaigns with calculator: {name: experiment}")
    repo = CampaignRepository(db, cfg.name)
    objectives = [o.name for o in cfg.objectives]
    lock = DriverLock(db, cfg.name)
    lock.acquire(False)  # not while a driver (or another ingest) writes to the campaign
    try:
        candidates = {c["key"]: c for c in repo.candidates(Status.proposed_ever())}
        recorded = {r["key"]: r for r in repo.results(properties=["key", "status", *objectives])}
        m = read_measurements(df, path, cfg.name, objectives, candidates, recorded)
        doc = repo.doc()
        source = {"file": path.name, "ingested_at": now()}
        results = [measurement_doc(cfg, candidates[r["key"]], r, {**source, "row": r["row"]})
                   for r in m.records]
        with db.transaction():
            for result in results:
                cand = candidates[result["key"]]
                cand.update(status=result["status"], finished_at=now())
                repo.write_results(result)
                repo.write_candidates(cand)
                update_best(doc, result, cfg.objective)
            repo.save_doc(doc)
    finally:
        lock.release()
    out = IngestSummary(cfg.name, sum(r["status"] == "done" for r in m.records),
                        sum(r["status"] == "failed" for r in m.records), m.already)
    for c in repo.candidates(Status.open(), properties=["round"]):
        out.awaiting[c["round"]] = out.awaiting.get(c["round"], 0) + 1
    return out
