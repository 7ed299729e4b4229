"""The campaign loop: propose, build, evaluate, store, repeat until done.

All state lives in the store. Candidates are written (status ``proposed``)
before any calculation starts; each result is written, with its candidate's
new status, in one transaction as soon as it finishes. A campaign killed at
any point and started again first finishes the candidates that have no result,
then carries on (:mod:`htflow.campaign.resume`): nothing is computed twice and
nothing finished is lost.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator
from typing import Any

from htflow.analysis.hull import load_phases
from htflow.calculators.flows import EvaluationMaker
from htflow.calculators.registry import get_calculator
from htflow.campaign import evaluation, experiment, promotion, resume
from htflow.campaign.proposals import Proposer
from htflow.campaign.rounds import (
    RoundSummary,
    replace_round,
    stalled,
    target_reached,
    update_best,
    update_hull,
    update_pareto,
)
from htflow.execution.base import Outcome
from htflow.execution.registry import get_executor
from htflow.report.view import CampaignView
from htflow.schemas.config import CampaignConfig
from htflow.schemas.documents import CampaignDoc, CampaignState, CandidateDoc, ResultDoc, Status
from htflow.search.registry import get_generator
from htflow.space.build import build_space, make_builder
from htflow.store.db import CampaignDB
from htflow.store.locks import DriverLock
from htflow.store.repository import CampaignRepository, now


class Campaign:
    """A screening campaign bound to its store.

    Parameters
    ----------
    config
        The validated campaign (:func:`htflow.campaign.validation.load_config`).
    db
        The campaign database (defaults to the one the config names).
    announce
        Called with a line the executor wants the user to see (the Dask dashboard).
    """

    def __init__(self, config: CampaignConfig, db: CampaignDB | None = None, announce: Any = None):
        self.db = db or CampaignDB(config.store)
        self.repo = CampaignRepository(self.db, config.name)
        # a resumed campaign keeps the defaults it started with where its file does not set them
        config = resume.started_settings(config, self.repo)
        self.config = config
        self.announce = announce
        self.name = config.name
        self.objective = config.objective
        self.space = build_space(config.space)
        self.builder = make_builder(config)
        self.calculator = get_calculator(config.calculator.name)
        search = config.search
        self.generator = get_generator(search.sampler, search.surrogate, search.generative)
        self.executor = get_executor(config.executor, announce, tag=config.name)
        phases = config.reference_phases
        self.phases = load_phases(phases, self.space.elements) if phases else []
        self.proposer = Proposer(config, self.repo, self.space, self.builder, self.generator, self.phases)
        self.label = ""
        #: experiment campaigns: propose the next round once some of the awaited samples are in
        self.proceed_with_partial = False
        self._lock: DriverLock | None = None  # held while run() drives the campaign
        #: multi-fidelity: the campaign of the promoted calculator (same store and executor)
        self.promoted: Campaign | None = None
        if config.promote is not None:
            self.promoted = Campaign(config.promoted_config(), db=self.db)
            self.promoted.executor = self.executor
            self.promoted.label = f"promoted to {config.promote.calculator.name}"

    @functools.cached_property
    def maker(self) -> EvaluationMaker:
        """The evaluation flow maker (made on first use: a calculator that cannot be set up fails
        when the campaign starts, before anything is written)."""
        return self.calculator.evaluation_maker(self.config)

    @functools.cached_property
    def calculator_metadata(self) -> dict:
        """Name and versions recorded with every result (looked up once: package versions cost a
        metadata read each)."""
        return self.calculator.metadata()

    @functools.cached_property
    def batch_maker(self) -> Any:
        """The calculator's maker of several structures per job, or None (one structure per flow)."""
        if self.config.calculator.flow != "relax" or self.config.structure.configurations > 1:
            return None  # a property flow, or an average over decorations, runs per composition
        return self.calculator.batch_maker(self.config.calculator)

    # -- reading ---------------------------------------------------------------------------------
    def known_keys(self) -> set[str]:
        """Keys of every candidate this campaign has proposed (pruned ones are not proposed)."""
        return self.repo.known_keys()

    def results(self, status: Status | str | None = None,
                properties: list[str] | None = None) -> list[ResultDoc]:
        """This campaign's result documents (only ``properties``, if given)."""
        return self.repo.results(Status(status) if status else None, properties)

    def summaries(self) -> list[dict]:
        """Results without structures: what generators and plots need."""
        return self.repo.summaries(o.name for o in self.config.objectives)

    def best(self, n: int = 10) -> list[ResultDoc]:
        """The ``n`` best done results by the primary objective."""
        return self.repo.best(self.objective.name, self.objective.goal, n)

    def view(self) -> CampaignView:
        """The read-only view of this campaign that reports and plots draw from."""
        return CampaignView(self.config, self.db)

    def status(self) -> dict:
        """Counts by candidate status plus the campaign document."""
        return {"doc": self.repo.doc(), "counts": self.repo.counts()}

    # -- the steps the loop (and promotion) take ------------------------------------------------
    def open(self) -> CampaignDoc:
        """The campaign document, created or checked for a resume (:func:`resume.open_campaign`)."""
        return resume.open_campaign(self.repo, self.config, self.calculator_metadata)

    def references(self, doc: CampaignDoc) -> dict[str, float]:
        """The elements' reference energies per atom, computed on first use."""
        return evaluation.run_references(self.repo, doc, self.space.elements, self.builder, self.maker,
                                         self.executor)

    def pending(self) -> list[CandidateDoc]:
        """Candidates proposed or running without a result (after reconciling finished ones)."""
        return resume.pending(self.repo)

    def promotion_choice(self, rnd: int) -> list[tuple[str, str]]:
        """Round ``rnd``'s keys to promote, with why (:func:`promotion.promotion_choice`)."""
        return promotion.promotion_choice(self, rnd)

    def promote_round(self, doc: CampaignDoc, rnd: int, progress: Any) -> None:
        """Evaluate round ``rnd``'s chosen results with the promoted calculator."""
        promotion.promote(self, doc, rnd, progress)

    # -- the loop --------------------------------------------------------------------------------
    def run(self, progress: Any = None, force: bool = False,
            proceed_with_partial: bool = False) -> CampaignDoc:
        """Run (or resume) the campaign to its end; returns the campaign document.

        ``progress`` is an optional object with ``start_round(round, n)``,
        ``advance(outcome)`` and ``end_round(summary)`` (the CLI's rich bars).
        One driver at a time: another live driver of the campaign is an error naming it
        (:class:`~htflow.store.locks.CampaignLocked`), a dead one's lock is taken over, and
        ``force`` takes any lock. The executor's workers and the lock are released when it
        returns or raises. An experiment campaign returns when it waits for measurements (state
        ``waiting``, ``doc["awaiting"]``); ``proceed_with_partial`` then lets it go on with those
        that arrived (:mod:`htflow.campaign.experiment`).
        """
        self.proceed_with_partial = proceed_with_partial
        self._lock = DriverLock(self.db, self.name)
        self._lock.acquire(force)
        if self._lock.taken_over and self.announce:
            o = self._lock.taken_over
            self.announce(f"took over campaign {self.name!r} from pid {o.get('pid')} on {o.get('host')}: "
                          f"{o['reason']}")
        try:
            return self._run(progress)
        finally:
            self.executor.close()
            self._lock.release()

    def _run(self, progress: Any) -> CampaignDoc:
        measured = self.config.is_experiment
        if not measured:
            self.maker  # noqa: B018 (a calculator that cannot be set up fails here, before anything is written)
        if self.promoted is not None:
            self.promoted.maker  # noqa: B018
        with self.db:
            doc = self.open()
            if resume.finished(doc, self.config):
                return doc  # a rerun computes nothing unless the budget or patience was raised
            refs = {} if measured else self.references(doc)
            doc["state"] = CampaignState.RUNNING.value
            doc.pop("awaiting", None)
            self.repo.save_doc(doc)
            self._finish_promotions(doc, progress)
            stop_reason = None
            while stop_reason is None:
                stop_reason = (experiment.step(self, doc, progress, self.proceed_with_partial) if measured
                               else self._round(doc, refs, progress))
            if stop_reason == experiment.WAITING:
                doc["state"] = CampaignState.WAITING.value
                self.repo.save_doc(doc)
                return doc
            doc["state"] = CampaignState.COMPLETE.value
            doc["stop_reason"] = stop_reason
            doc["stopped_with"] = resume.stop_settings(self.config)
            self.repo.save_doc(doc)
            return doc

    def _finish_promotions(self, doc: CampaignDoc, progress: Any) -> None:
        """Promote the rounds evaluated before an interruption whose promotion did not finish."""
        if self.promoted is None:
            return
        for r in sorted(doc["rounds"], key=lambda r: r["round"]):
            if "evaluated" in r and not r.get("promoted", {}).get("complete"):
                self.promote_round(doc, r["round"], progress)

    def stop_reason(self, doc: CampaignDoc, remaining: int) -> str | None:
        """Why the campaign stops before proposing another round, or None to go on."""
        if remaining <= 0:
            return "budget spent"
        if target_reached(doc, self.objective):
            return "target reached"
        if stalled(doc, self.config.search.patience):
            return f"no improvement in {self.config.search.patience} rounds"
        return None

    def _round(self, doc: CampaignDoc, refs: dict[str, float], progress: Any) -> str | None:
        """Finish the pending round or propose and evaluate a new one; the stop reason, or None."""
        search = self.config.search
        pending = self.pending()
        known = self.known_keys()
        if pending:
            rnd = pending[0]["round"]
            batch = [c for c in pending if c["round"] == rnd]
        else:
            remaining = search.budget - len(known)
            reason = self.stop_reason(doc, remaining)
            if reason:
                return reason
            rnd = max((r["round"] for r in doc["rounds"]), default=0) + 1
            batch = self.proposer.propose(rnd, known, min(search.batch_size, remaining), doc)
            if not batch:
                return self.proposer.stop_reason_when_empty()
        self.evaluate(doc, rnd, batch, refs, progress)
        if self.promoted is not None:
            self.promote_round(doc, rnd, progress)
        return None

    def evaluate(self, doc: CampaignDoc, rnd: int, batch: list[CandidateDoc], refs: dict[str, float],
                 progress: Any) -> None:
        """Evaluate a round's candidates; store each result as it arrives; summarise the round."""
        by_key = {c["key"]: c for c in batch}
        tasks, known = evaluation.tasks_for(batch, doc, self.builder, self.maker, refs)
        running = [c for c in batch if c["status"] == Status.RUNNING]
        if running:
            self.repo.write_candidates(running)
        if progress:
            if self.label:
                progress.start_round(rnd, len(batch), label=self.label)
            else:
                progress.start_round(rnd, len(batch))
        if self.batch_maker is not None and tasks:
            tasks = evaluation.batched(tasks, refs, self.batch_maker)
        for outcome in itertools.chain(known, self._outcomes(tasks)):  # stored as each arrives
            result = evaluation.result_doc(self.config, self.calculator_metadata, self.builder,
                                           by_key[outcome.key], outcome)
            self.record(doc, by_key[outcome.key], result, progress, outcome)
        self.end_round(doc, rnd, refs, progress)

    def _outcomes(self, tasks: list) -> Iterator[Outcome]:
        for outcome in self.executor.run(tasks, self.db.job_store()):
            yield from evaluation.unbatched(outcome)

    def record(self, doc: CampaignDoc, cand: CandidateDoc, result: ResultDoc, progress: Any,
               outcome: Outcome) -> None:
        """Write one result with its candidate's new status, in one transaction."""
        cand["status"] = result["status"]
        cand["finished_at"] = now()
        with self.db.transaction():
            self.repo.write_results(result)
            self.repo.write_candidates(cand)
        update_best(doc, result, self.objective)
        if self._lock is not None:
            self._lock.heartbeat()
        if progress:
            progress.advance(outcome, doc.get("best"))

    def end_round(self, doc: CampaignDoc, rnd: int, refs: dict[str, float], progress: Any) -> None:
        """The hull, the Pareto front and the round's summary, once its results are in."""
        fields = ["key", "counts", "energy_per_atom", "status", "formula", "e_above_hull",
                  *(o.name for o in self.config.objectives)]
        done = self.repo.results(Status.DONE, list(dict.fromkeys(fields)))
        hull = (None if self.config.is_experiment  # measured: no energies, no hull
                else update_hull(self.repo, self.config, refs, done, self.phases))
        pareto = update_pareto(doc, done, list(self.config.objectives))
        best = doc.get("best") or {}
        # the whole round's results: a resumed round evaluated only what an interruption left
        statuses = [r["status"] for r in self.repo.results(properties=["status"], rnd=rnd)]
        evaluated, failed = len(statuses), statuses.count(Status.FAILED)
        summary = next((r for r in doc["rounds"] if r["round"] == rnd), {"round": rnd})
        summary.update({"round": rnd, "evaluated": evaluated, "failed": failed, "hull": hull,
                        **({"pareto": pareto} if pareto else {}), "best_key": best.get("key"),
                        "best_value": best.get("value"), "finished_at": now()})
        replace_round(doc, summary)
        self.repo.save_doc(doc)
        if progress:
            progress.end_round(RoundSummary(rnd, evaluated, failed, best.get("key"), best.get("value"),
                                            summary.get("cv"), summary.get("pruned") or 0, self.label))
