"""Evaluating a round: elemental references, candidates → flows → outcomes → result documents.

Each result is written, with its candidate's new status, in one transaction as
soon as it finishes; a failed calculation is a result too (status ``failed``,
the error and the input structure), never fatal to the campaign.
"""

from __future__ import annotations

from typing import Any

from pymatgen.core import Composition

from htflow.errors import CampaignError, InputError
from htflow.execution.base import EvalTask, Executor, Outcome
from htflow.schemas.config import CampaignConfig
from htflow.schemas.documents import CampaignDoc, CandidateDoc, ResultDoc, Status
from htflow.space.compositions import composition_key
from htflow.space.structures import StructureBuilder
from htflow.store.repository import CampaignRepository, now


def run_references(repo: CampaignRepository, doc: CampaignDoc, elements: tuple[str, ...],
                   builder: StructureBuilder, maker: Any, executor: Executor) -> dict[str, float]:
    """Each element on the campaign's prototype and cell with its calculator (once per campaign):
    the reference energies per atom of formation energies and of the hull."""
    refs = doc.setdefault("references", {})
    todo = [el for el in elements if el not in refs]
    if todo:
        tasks = [EvalTask(f"ref:{el}", maker.make(builder.build({el: 1.0})), {"element": el}) for el in todo]
        for outcome in executor.run(tasks, repo.db.job_store()):
            el = outcome.meta["element"]
            if not outcome.ok and "PropertyError: " in str(outcome.error):
                raise InputError(f"objectives: {str(outcome.error).split('PropertyError: ', 1)[1]} (the "
                                 f"reference calculation of {el}); fix the objective's path or extractor")
            if not outcome.ok:
                raise CampaignError(
                    f"the reference calculation for {el} failed ({outcome.error}); formation "
                    "energies cannot be computed. Check the calculator supports this element."
                )
            refs[el] = {"energy_per_atom": outcome.output["energy_per_atom"], "key": composition_key({el: 1}),
                        "result": outcome.output, "seconds": outcome.seconds}
            repo.save_doc(doc)
    return {el: refs[el]["energy_per_atom"] for el in elements}


def result_doc(config: CampaignConfig, calculator: dict, builder: StructureBuilder, cand: CandidateDoc,
               outcome: Outcome) -> ResultDoc:
    """The result document of one candidate's outcome (its properties, or its error and input)."""
    counts = cand["counts"]
    comp = Composition(counts)
    doc: ResultDoc = {
        "campaign": config.name, "key": cand["key"], "round": cand["round"],
        "status": (Status.DONE if outcome.ok else Status.FAILED).value,
        "composition": cand["composition"], "counts": counts, "elements": sorted(counts),
        "nelements": len(counts), "formula": comp.reduced_formula, "n_atoms": int(comp.num_atoms),
        "prototype": config.structure.prototype, "calculator": calculator,
        "timings": {"evaluation_s": outcome.seconds}, "error": outcome.error, "created_at": now(),
    }
    if outcome.ok:
        out = dict(outcome.output)
        doc["timings"]["relax_s"] = out.pop("relax_seconds", None)
        doc.update(out)
    else:
        structure = outcome.meta.get("structure") or builder.build(cand["composition"])
        doc["input_structure"] = structure.as_dict()
    return doc


def batched(tasks: list[EvalTask], refs: dict, batch_maker: Any) -> list[EvalTask]:
    """Group one-structure tasks into jobs of ``batch_size`` structures (the calculator's batch maker)."""
    size = batch_maker.batch_size
    groups = []
    for a in range(0, len(tasks), size):
        part = tasks[a:a + size]
        flow = batch_maker.make([t.meta["structure"] for t in part], refs)
        groups.append(EvalTask(f"batch:{part[0].key}+{len(part) - 1}", flow,
                               {"batch": [(t.key, t.meta) for t in part]}))
    return groups


def unbatched(outcome: Outcome) -> list[Outcome]:
    """One outcome per structure of a batch job: its properties, its own error, or the job's."""
    if "batch" not in outcome.meta:
        return [outcome]
    members = outcome.meta["batch"]
    share = outcome.seconds / len(members)
    results = (outcome.output or {}).get("results") if outcome.ok else None
    if not results or len(results) != len(members):
        error = outcome.error or "the batch job returned no result per structure"
        return [Outcome(key, None, error, share, meta) for key, meta in members]
    return [Outcome(key, None if "error" in r else r, r.get("error"), share, meta)
            for (key, meta), r in zip(members, results, strict=True)]


def tasks_for(batch: list[CandidateDoc], doc: CampaignDoc, builder: StructureBuilder, maker: Any,
              refs: dict[str, float]) -> tuple[list[EvalTask], list[Outcome]]:
    """The flows to run for ``batch`` (candidates marked ``running``), and the outcomes already known:
    pure elements were computed as references."""
    ref_results = {r["key"]: r for r in doc["references"].values()}
    tasks, known = [], []
    for cand in batch:
        if cand["key"] in ref_results:
            ref = ref_results[cand["key"]]
            known.append(Outcome(cand["key"], {**ref["result"], "formation_energy_per_atom": 0.0}, None,
                                 ref["seconds"]))
            continue
        k = getattr(builder, "configurations", 1)
        structures = [builder.build(cand["composition"], c) for c in range(k)]
        tasks.append(EvalTask(cand["key"], maker.make_configurations(structures, refs),
                              {"structure": structures[0]}))
        cand["status"] = Status.RUNNING.value
    return tasks, known
