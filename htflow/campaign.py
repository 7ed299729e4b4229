"""The campaign loop: propose, build, evaluate, store, repeat until done.

All state lives in the store. Candidates are written (status ``proposed``)
before any calculation starts; each result is written, with its candidate's
new status, in one transaction as soon as it finishes. A campaign killed at
any point and started again first finishes the candidates that have no result,
then carries on: nothing is computed twice and nothing finished is lost.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymatgen.core import Composition

from htflow.calculators import get_calculator
from htflow.config import CampaignConfig
from htflow.errors import CampaignError, InputError
from htflow.executors import EvalTask, Outcome, get_executor
from htflow.flows import EvaluationMaker
from htflow.generators import ProposalContext, get_generator
from htflow.space import composition_key
from htflow.store.db import ENTRY_KEY, CampaignDB
from htflow.structures import StructureBuilder

#: Config fields that may change when a campaign is resumed.
RESUMABLE_CHANGES = {
    "description", "search.budget", "search.batch_size", "search.patience", "executor", "store",
}


def _round_model_info(report: dict) -> dict:
    """The model part of a round summary: metrics, not the per-point arrays."""
    out = {}
    if report.get("cv"):
        out["cv"] = {k: v for k, v in report["cv"].items() if k not in ("y_true", "y_pred", "y_std")}
    if report.get("cv_objectives"):
        out["cv_objectives"] = {name: {k: v for k, v in cv.items() if k not in ("y_true", "y_pred", "y_std")}
                                for name, cv in report["cv_objectives"].items()}
    for k in ("model", "features", "acquisition", "fitted", "n_train", "n_candidates", "pruned",
              "cv_seconds", "fit_seconds", "evolved", "evolve_seconds", "parego_weights", "feasibility",
              "failed_seen", "multi_objective", "reference", "select_seconds"):
        if k in report:
            out[k] = report[k]
    return out



def _now() -> datetime:
    return datetime.now(UTC)


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict) and v and k not in ("bounds", "options"):
            out.update(_flatten(v, path + "."))
        else:
            out[path] = v
    return out


def _with_defaults(stored: dict) -> dict:
    """A stored config as the current version reads it: fields added since get their defaults,
    so a campaign started by an older htflow still resumes."""
    from pydantic import ValidationError

    try:  # the executor may change on resume, and its files may have moved: not re-checked
        return CampaignConfig.model_validate({**stored, "executor": {}}).model_dump(mode="json")
    except ValidationError:
        return stored


def config_changes(old: dict, new: dict) -> list[str]:
    """Dotted fields that differ between two config dumps and may not change on resume."""
    a, b = _flatten(old), _flatten(new)
    changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return [k for k in changed if not any(k == r or k.startswith(r + ".") for r in RESUMABLE_CHANGES)]


@dataclass
class RoundSummary:
    """What one round did."""

    round: int
    evaluated: int
    failed: int
    best_key: str | None
    best_value: float | None
    cv: dict | None = None
    pruned: int = 0
    #: which evaluation this was when not the campaign's own screening (e.g. "chgnet (promoted)")
    label: str = ""


class Campaign:
    """A screening campaign bound to its store.

    Parameters
    ----------
    config
        The validated campaign.
    db
        The campaign database (defaults to the one the config names).
    announce
        Called with a line the executor wants the user to see (the Dask dashboard).
    """

    def __init__(self, config: CampaignConfig, db: CampaignDB | None = None, announce: Any = None):
        self.config = config
        self.db = db or CampaignDB(config.store)
        self.space = config.space.build()
        self.builder = StructureBuilder(
            config.structure.prototype, config.structure.n_atoms, config.structure.lattice_constant
        )
        self.calculator = get_calculator(config.calculator.name)
        self.generator = get_generator(config.search.sampler, config.search.surrogate)
        self.executor = get_executor(config.executor, announce, tag=config.name)
        self.name = config.name
        self.objective = config.objective
        self._sign = 1.0 if self.objective.goal == "minimize" else -1.0
        self._pool: list[dict[str, float]] | None = None
        self._last_report: dict = {}
        self.label = ""
        #: multi-fidelity: the campaign of the promoted calculator (same store and executor)
        self.promoted: Campaign | None = None
        if config.promote is not None:
            self.promoted = Campaign(config.promoted_config(), db=self.db)
            self.promoted.executor = self.executor
            self.promoted.label = f"promoted to {config.promote.calculator.name}"
        self.phases: list[dict] = []
        if config.reference_phases:
            from htflow.thermo import load_phases

            self.phases = load_phases(config.reference_phases, self.space.elements)

    @functools.cached_property
    def maker(self) -> EvaluationMaker:
        """The evaluation flow maker (made on first use: reading a campaign, e.g. for a report or the
        dashboard, does not import atomate2)."""
        return EvaluationMaker(relax_maker=self.calculator.relax_maker(self.config.calculator))

    @functools.cached_property
    def batch_maker(self) -> Any:
        """The calculator's maker of several structures per job, or None (one structure per flow)."""
        return self.calculator.batch_maker(self.config.calculator)

    # -- store helpers ---------------------------------------------------------
    def _doc(self) -> dict | None:
        return self.db.campaigns.query_one({"name": self.name})

    def _save_doc(self, doc: dict) -> None:
        doc["updated_at"] = _now()
        self.db.campaigns.update(doc, key="name")

    def _open(self) -> dict:
        """Create the campaign document, or check a resumed one has a compatible config."""
        new_cfg = self.config.model_dump(mode="json")
        doc = self._doc()
        if doc is None:
            doc = {
                "name": self.name,
                "config": new_cfg,
                "config_hash": hashlib.sha256(json.dumps(new_cfg, sort_keys=True).encode()).hexdigest(),
                "state": "running",
                "created_at": _now(),
                "rounds": [],
                "references": {},
                "best": None,
                "calculator": self.calculator.metadata(),
            }
            self._save_doc(doc)
            return doc
        changed = config_changes(_with_defaults(doc["config"]), new_cfg)
        if changed:
            raise InputError(
                f"campaign {self.name!r} already exists in {self.db.location} with a different "
                f"{', '.join(changed)}; only {', '.join(sorted(RESUMABLE_CHANGES))} may change on "
                "resume. Use a new name to start another campaign."
            )
        doc["config"] = new_cfg
        return doc

    # -- references ----------------------------------------------------------
    def _references(self, doc: dict) -> dict[str, float]:
        refs = doc.setdefault("references", {})
        todo = [el for el in self.space.elements if el not in refs]
        if todo:
            tasks = []
            for el in todo:
                structure = self.builder.build({el: 1.0})
                tasks.append(EvalTask(f"ref:{el}", self.maker.make(structure), {"element": el}))
            for outcome in self.executor.run(tasks, self.db.job_store()):
                el = outcome.meta["element"]
                if not outcome.ok:
                    raise CampaignError(
                        f"the reference calculation for {el} failed ({outcome.error}); formation "
                        "energies cannot be computed. Check the calculator supports this element."
                    )
                refs[el] = {
                    "energy_per_atom": outcome.output["energy_per_atom"],
                    "key": composition_key({el: 1}),
                    "result": outcome.output,
                    "seconds": outcome.seconds,
                }
                self._save_doc(doc)
        return {el: refs[el]["energy_per_atom"] for el in self.space.elements}

    # -- candidates and results --------------------------------------------------
    def known_keys(self) -> set[str]:
        """Keys of every candidate this campaign has proposed (pruned ones are not proposed)."""
        crit = {"campaign": self.name, "status": {"$in": ["proposed", "running", "done", "failed"]}}
        return {d["key"] for d in self.db.candidates.query(crit, ["key"])}

    def results(self, status: str | None = None, properties: list[str] | None = None) -> list[dict]:
        """This campaign's result documents (only ``properties``, if given)."""
        crit: dict[str, Any] = {"campaign": self.name}
        if status:
            crit["status"] = status
        with self.db:
            return list(self.db.results.query(crit, properties))

    def summaries(self) -> list[dict]:
        """Results without structures: what generators and plots need."""
        fields = ["key", "round", "status", "composition", "counts", "created_at"]
        return self.results(properties=fields + [o.name for o in self.config.objectives])

    def _pending(self) -> list[dict]:
        """Candidates proposed or running without a result; reconciles finished ones."""
        open_ = list(
            self.db.candidates.query({"campaign": self.name, "status": {"$in": ["proposed", "running"]}})
        )
        if not open_:
            return []
        keys = [c["key"] for c in open_]
        finished = {
            r["key"]: r["status"]
            for r in self.db.results.query({"campaign": self.name, "key": {"$in": keys}}, ["key", "status"])
        }
        pending = []
        for cand in open_:
            if cand["key"] in finished:  # killed between the two writes: take the result's word
                cand["status"] = finished[cand["key"]]
                self.db.candidates.update(cand, key=ENTRY_KEY)
            else:
                pending.append(cand)
        return pending

    def _result_doc(self, cand: dict, outcome: Outcome) -> dict:
        counts = cand["counts"]
        comp = Composition(counts)
        doc = {
            "campaign": self.name,
            "key": cand["key"],
            "round": cand["round"],
            "status": "done" if outcome.ok else "failed",
            "composition": cand["composition"],
            "counts": counts,
            "elements": sorted(counts),
            "nelements": len(counts),
            "formula": comp.reduced_formula,
            "n_atoms": int(comp.num_atoms),
            "prototype": self.config.structure.prototype,
            "calculator": self.calculator.metadata(),
            "timings": {"evaluation_s": outcome.seconds},
            "error": outcome.error,
            "created_at": _now(),
        }
        if outcome.ok:
            out = dict(outcome.output)
            doc["timings"]["relax_s"] = out.pop("relax_seconds", None)
            doc.update(out)
        else:
            structure = outcome.meta.get("structure") or self.builder.build(cand["composition"])
            doc["input_structure"] = structure.as_dict()
        return doc

    def _value(self, doc: dict) -> float | None:
        v = doc.get(self.objective.name)
        return None if v is None else float(v)

    def best(self, n: int = 10) -> list[dict]:
        """The ``n`` best done results by the primary objective."""
        direction = 1 if self.objective.goal == "minimize" else -1
        crit = {"campaign": self.name, "status": "done", self.objective.name: {"$ne": None}}
        with self.db:
            return list(self.db.results.query(crit, sort={self.objective.name: direction}, limit=n))

    # -- the loop ------------------------------------------------------------
    def run(self, progress: Any = None) -> dict:
        """Run (or resume) the campaign to its end; returns the campaign document.

        ``progress`` is an optional object with ``start_round(round, n)``,
        ``advance(outcome)`` and ``end_round(summary)`` (the CLI's rich bars).
        The executor's workers are released when it returns or raises.
        """
        try:
            return self._run(progress)
        finally:
            self.executor.close()

    def _run(self, progress: Any) -> dict:
        search = self.config.search
        self.maker  # noqa: B018 (a calculator that cannot be set up fails here, before anything is written)
        if self.promoted is not None:
            self.promoted.maker  # noqa: B018
        with self.db:
            doc = self._open()
            refs = self._references(doc)
            doc["state"] = "running"
            self._save_doc(doc)
            stop_reason = None
            # rounds evaluated before an interruption whose promotion did not finish
            for r in sorted(doc["rounds"], key=lambda r: r["round"]):
                unfinished = "evaluated" in r and not r.get("promoted", {}).get("complete")
                if self.promoted is not None and unfinished:
                    self._promote(doc, r["round"], progress)
            while True:
                pending = self._pending()
                known = self.known_keys()
                if pending:
                    rnd = pending[0]["round"]
                    batch = [c for c in pending if c["round"] == rnd]
                else:
                    remaining = search.budget - len(known)
                    if remaining <= 0:
                        stop_reason = "budget spent"
                        break
                    if self._target_reached(doc):
                        stop_reason = "target reached"
                        break
                    if self._stalled(doc):
                        stop_reason = f"no improvement in {search.patience} rounds"
                        break
                    rnd = max((r["round"] for r in doc["rounds"]), default=0) + 1
                    batch = self._propose(rnd, known, min(search.batch_size, remaining), doc)
                    if not batch:
                        rep = self._last_report
                        if rep.get("pruned") and rep.get("pruned") == rep.get("n_candidates"):
                            stop_reason = (f"the model pruned all {rep['pruned']} remaining candidates "
                                           "(none can beat the best; see search.surrogate.prune)")
                        else:
                            stop_reason = "no candidates left in the space"
                        break
                self._evaluate(doc, rnd, batch, refs, progress)
                if self.promoted is not None:
                    self._promote(doc, rnd, progress)
            doc["state"] = "complete"
            doc["stop_reason"] = stop_reason
            self._save_doc(doc)
            return doc

    def promotion_choice(self, rnd: int) -> list[tuple[str, str]]:
        """The keys of round ``rnd`` to promote, with why: the best share by the objective, then the
        share the surrogate was least sure of (its std when it chose them). Deterministic."""
        import math

        p = self.config.promote
        # pure elements are left out: the promoted campaign computes them as its references anyway
        done = [r for r in self.db.results.query({"campaign": self.name, "status": "done", "round": rnd},
                                                 ["key", "counts", self.objective.name])
                if r.get(self.objective.name) is not None and len(r.get("counts") or {}) > 1]
        done.sort(key=lambda r: (self._sign * float(r[self.objective.name]), r["key"]))
        chosen = [(r["key"], "best") for r in done[: math.ceil(p.best * len(done))]]
        if p.uncertain:
            taken = {k for k, _ in chosen}
            keys = {r["key"] for r in done} - taken
            cands = [c for c in self.db.candidates.query({"campaign": self.name, "round": rnd},
                                                         ["key", "prediction"])
                     if c["key"] in keys and (c.get("prediction") or {}).get("std") is not None]
            cands.sort(key=lambda c: (-float(c["prediction"]["std"]), c["key"]))
            chosen += [(c["key"], "uncertain") for c in cands[: math.ceil(p.uncertain * len(done))]]
        return chosen

    def _promote(self, doc: dict, rnd: int, progress: Any) -> None:
        """Evaluate round ``rnd``'s chosen results with the promoted calculator, in its own campaign
        (its own references, hull and results, labelled with its calculator); resumable."""
        child = self.promoted
        cdoc = child._open()
        crefs = child._references(cdoc)
        chosen = self.promotion_choice(rnd)
        have = child.known_keys()
        screened = {r["key"]: r for r in self.db.results.query(
            {"campaign": self.name, "status": "done", "round": rnd},
            ["key", "counts", "composition", self.objective.name])}
        new = []
        for key, why in chosen:
            if key in have:
                continue
            r = screened[key]
            new.append({"campaign": child.name, "key": key, "round": rnd, "status": "proposed",
                        "counts": r["counts"], "composition": r["composition"], "proposed_at": _now(),
                        "promoted_from": {"campaign": self.name, "reason": why,
                                          "calculator": self.config.calculator.name,
                                          self.objective.name: r.get(self.objective.name)}})
        if new:
            child.db.candidates.update(new, key=ENTRY_KEY)
        batch = [c for c in child._pending() if c["round"] == rnd]
        if batch:
            child._evaluate(cdoc, rnd, batch, crefs, progress)
        promoted = {r["key"]: r for r in child.db.results.query({"campaign": child.name, "round": rnd},
                                                                ["key", "status"])}
        summary = next(r for r in doc["rounds"] if r["round"] == rnd)
        summary["promoted"] = {
            "campaign": child.name, "calculator": child.config.calculator.name, "complete": True,
            "keys": [k for k, _ in chosen], "done": sum(r["status"] == "done" for r in promoted.values()),
            "failed": sum(r["status"] == "failed" for r in promoted.values()),
        }
        doc["promoted_to"] = child.name
        self._save_doc(doc)
        cdoc = child._doc()
        cdoc["promoted_from"] = self.name
        cdoc["state"] = "complete"
        child._save_doc(cdoc)

    def _target_reached(self, doc: dict) -> bool:
        target, best = self.objective.target, doc.get("best")
        if target is None or not best or best.get("value") is None:
            return False
        return self._sign * best["value"] <= self._sign * target

    def _stalled(self, doc: dict) -> bool:
        """True when the best value has not improved in the last ``search.patience`` rounds."""
        k = self.config.search.patience
        rounds = sorted((r for r in doc["rounds"] if "evaluated" in r), key=lambda r: r["round"])
        if not k or len(rounds) <= k:
            return False
        before = rounds[-k - 1].get("best_value")
        return before is not None and rounds[-1].get("best_value") == before

    def _propose(self, rnd: int, known: set[str], n: int, doc: dict | None = None) -> list[dict]:
        ctx = ProposalContext(
            space=self.space,
            builder=self.builder,
            known=known,
            round=rnd,
            seed=self.config.search.seed,
            results=self.summaries(),
            objective=self.objective,
            objectives=list(self.config.objectives),
            reference=(doc or {}).get("hv_reference"),
            references={el: v["energy_per_atom"] for el, v in ((doc or {}).get("references") or {}).items()},
            phases=self.phases,
            _pool=self._pool,
        )
        proposals = self.generator.propose(ctx, n)[:n]
        self._pool = ctx._pool  # enumerate the grid once per campaign, not per round
        report = self._last_report = ctx.report
        predictions = report.get("predictions", {})
        cands = []
        for fractions in proposals:
            counts = self.builder.realise(fractions)
            key = composition_key(counts)
            if key in known:
                continue
            total = sum(counts.values())
            cands.append(
                {
                    "campaign": self.name,
                    "key": key,
                    "round": rnd,
                    "status": "proposed",
                    "counts": counts,
                    "composition": {el: c / total for el, c in counts.items()},
                    "proposed_at": _now(),
                    "prediction": predictions.get(key),
                }
            )
        proposed = {c["key"] for c in cands}
        with self.db.transaction():
            if "pruned_keys" in report:
                self._record_pruned(rnd, report["pruned_keys"], proposed)
            if cands:
                self.db.candidates.update(cands, key=ENTRY_KEY)
            if doc is not None:
                entry = {"round": rnd, "proposed": len(cands), "phase": report.get("phase")}
                entry.update(_round_model_info(report))
                if report.get("cv"):
                    doc["cv_predictions"] = {k: report["cv"][k] for k in ("y_true", "y_pred", "y_std")}
                    doc["cv_predictions"]["round"] = rnd
                doc["rounds"] = [r for r in doc["rounds"] if r["round"] != rnd] + [entry]
                self._save_doc(doc)
        return cands

    def _record_pruned(self, rnd: int, pruned: dict[str, dict], proposed: set[str]) -> None:
        """Mark newly pruned candidates; forget the ones the model now thinks better of."""
        before = {d["key"] for d in self.db.candidates.query(
            {"campaign": self.name, "status": "pruned"}, ["key"])}
        revived = [k for k in before if k not in pruned or k in proposed]
        if revived:
            self.db.candidates.remove_docs(
                {"campaign": self.name, "status": "pruned", "key": {"$in": revived}}
            )
        new = []
        for key, p in pruned.items():
            if key in before or key in proposed:
                continue
            counts = self.builder.realise(p["composition"])
            total = sum(counts.values())
            new.append({
                "campaign": self.name, "key": key, "round": rnd, "status": "pruned", "counts": counts,
                "composition": {el: c / total for el, c in counts.items()}, "pruned": p["pruned"],
            })
        if new:
            self.db.candidates.update(new, key=ENTRY_KEY)

    def _batched(self, tasks: list[EvalTask], refs: dict) -> list[EvalTask]:
        """Group one-structure tasks into jobs of ``batch_size`` structures (the calculator's batch maker)."""
        size = self.batch_maker.batch_size
        groups = []
        for a in range(0, len(tasks), size):
            part = tasks[a:a + size]
            structures = [t.meta["structure"] for t in part]
            flow = self.batch_maker.make(structures, refs)
            groups.append(EvalTask(f"batch:{part[0].key}+{len(part) - 1}", flow,
                                   {"batch": [(t.key, t.meta) for t in part]}))
        return groups

    @staticmethod
    def _unbatched(outcome: Outcome) -> list[Outcome]:
        """One outcome per structure of a batch job: its properties, its own error, or the job's."""
        members = outcome.meta["batch"]
        share = outcome.seconds / len(members)
        results = (outcome.output or {}).get("results") if outcome.ok else None
        if not results or len(results) != len(members):
            error = outcome.error or "the batch job returned no result per structure"
            return [Outcome(key, None, error, share, meta) for key, meta in members]
        return [Outcome(key, None if "error" in r else r, r.get("error"), share, meta)
                for (key, meta), r in zip(members, results, strict=True)]

    def _evaluate(self, doc: dict, rnd: int, batch: list[dict], refs: dict, progress: Any) -> None:
        by_key = {c["key"]: c for c in batch}
        ref_results = {r["key"]: r for r in doc["references"].values()}
        tasks, outcomes = [], []
        for cand in batch:
            if cand["key"] in ref_results:  # a pure element: already computed as a reference
                ref = ref_results[cand["key"]]
                outcomes.append(Outcome(cand["key"], {**ref["result"], "formation_energy_per_atom": 0.0},
                                        None, ref["seconds"]))
                continue
            structure = self.builder.build(cand["composition"])
            tasks.append(EvalTask(cand["key"], self.maker.make(structure, refs), {"structure": structure}))
            cand["status"] = "running"
        running = [c for c in batch if c["status"] == "running"]
        if running:
            self.db.candidates.update(running, key=ENTRY_KEY)
        if progress:
            if self.label:
                progress.start_round(rnd, len(batch), label=self.label)
            else:
                progress.start_round(rnd, len(batch))
        failed = 0
        if self.batch_maker is not None and tasks:
            tasks = self._batched(tasks, refs)

        def store(outcome: Outcome) -> None:
            nonlocal failed
            cand = by_key[outcome.key]
            result = self._result_doc(cand, outcome)
            cand["status"] = result["status"]
            cand["finished_at"] = _now()
            failed += not outcome.ok
            with self.db.transaction():
                self.db.results.update(result, key=ENTRY_KEY)
                self.db.candidates.update(cand, key=ENTRY_KEY)
            self._update_best(doc, result)
            if progress:
                progress.advance(outcome, doc.get("best"))

        for outcome in outcomes:
            store(outcome)
        for outcome in self.executor.run(tasks, self.db.job_store()):
            for one in (self._unbatched(outcome) if "batch" in outcome.meta else [outcome]):
                store(one)
        fields = ["key", "counts", "energy_per_atom", "status", "formula", "e_above_hull",
                  *(o.name for o in self.config.objectives)]
        done = self.results(status="done", properties=list(dict.fromkeys(fields)))
        hull = self._update_hull(refs, done)
        pareto = self._update_pareto(doc, done)
        best = doc.get("best") or {}
        summary = next((r for r in doc["rounds"] if r["round"] == rnd), {"round": rnd})
        summary.update({
            "round": rnd,
            "evaluated": len(batch),
            "failed": failed,
            "hull": hull,
            **({"pareto": pareto} if pareto else {}),
            "best_key": best.get("key"),
            "best_value": best.get("value"),
            "finished_at": _now(),
        })
        doc["rounds"] = [r for r in doc["rounds"] if r["round"] != rnd] + [summary]
        self._save_doc(doc)
        if progress:
            progress.end_round(RoundSummary(rnd, len(batch), failed, best.get("key"), best.get("value"),
                                            summary.get("cv"), summary.get("pruned") or 0, self.label))

    def _update_hull(self, refs: dict[str, float], results: list[dict]) -> dict | None:
        """Recompute the convex hull over the done ``results`` so far; store each result's
        ``e_above_hull`` where it changed. Returns the round's hull summary (None without energies)."""
        from htflow.thermo import CHANGED_EV, affected_systems, e_above_hull

        # only the systems that results without a distance yet (this round's) can have changed
        fresh = [r for r in results if r.get("e_above_hull") is None]
        distances = (e_above_hull(results, refs, affected_systems(results, fresh), phases=self.phases)
                     if fresh else {})
        if not distances and not any(r.get("e_above_hull") is not None for r in results):
            return None
        known = {r["key"]: r["e_above_hull"] for r in results if r.get("e_above_hull") is not None}
        everything = {**known, **distances}
        changed = [r["key"] for r in results if r["key"] in distances
                   and (r.get("e_above_hull") is None
                        or abs(r["e_above_hull"] - distances[r["key"]]) > CHANGED_EV)]
        if changed:
            docs = list(self.db.results.query({"campaign": self.name, "key": {"$in": changed}}))
            for d in docs:
                d.pop("_id", None)
                d["e_above_hull"] = distances[d["key"]]
            with self.db.transaction():
                self.db.results.update(docs, key=ENTRY_KEY)
        stable = sorted(k for k, v in everything.items() if v <= CHANGED_EV)
        out = {"entries": len(everything), "stable": len(stable), "updated": len(changed),
               "phases": len(self.phases)}
        within = self.config.search.surrogate.stable_within
        if within is not None:
            out["stable_within"] = within
            out["within"] = sum(v <= within + CHANGED_EV for v in everything.values())
        return out

    def _update_pareto(self, doc: dict, results: list[dict]) -> dict | None:
        """Several objectives: the Pareto front of every result so far and its hypervolume.

        The reference point is fixed the first time (each objective's ``reference``, else just
        beyond the worst value seen), so hypervolumes of later rounds are comparable.
        """
        objectives = self.config.objectives
        if len(objectives) < 2:
            return None
        from htflow.pareto import default_reference, hypervolume, pareto_mask

        names, goals = [o.name for o in objectives], [o.goal for o in objectives]
        rows = [r for r in results if all(r.get(k) is not None for k in names)]
        if not rows:
            return None
        y = [[r[k] for k in names] for r in rows]
        if not doc.get("hv_reference"):
            auto = default_reference(y, goals)
            doc["hv_reference"] = [o.reference if o.reference is not None else a
                                   for o, a in zip(objectives, auto, strict=True)]
        front = pareto_mask(y, goals)
        doc["pareto_front"] = sorted(r["key"] for r, on in zip(rows, front, strict=True) if on)
        return {"size": int(front.sum()), "hypervolume": hypervolume(y, doc["hv_reference"], goals),
                "reference": doc["hv_reference"], "objectives": names}

    def _update_best(self, doc: dict, result: dict) -> None:
        value = self._value(result) if result["status"] == "done" else None
        if value is None:
            return
        best = doc.get("best")
        if best is None or self._sign * value < self._sign * best["value"]:
            doc["best"] = {"key": result["key"], "value": value, "formula": result["formula"],
                           "objective": self.objective.name}

    def status(self) -> dict:
        """Counts by candidate status plus the campaign document."""
        with self.db:
            doc = self._doc()
            counts = {
                s: self.db.candidates.count({"campaign": self.name, "status": s})
                for s in ("proposed", "running", "done", "failed", "pruned")
            }
        return {"doc": doc, "counts": counts}
