"""What a round leaves in the campaign document: its summary, the best result, the convex hull and
the Pareto front, and the stop rules that read them."""

from __future__ import annotations

from dataclasses import dataclass

from htflow.analysis.hull import CHANGED_EV, affected_systems, e_above_hull
from htflow.analysis.pareto import default_reference, hypervolume, pareto_mask
from htflow.schemas.config import CampaignConfig, ObjectiveConfig
from htflow.schemas.documents import CampaignDoc, ResultDoc, RoundDoc, Status
from htflow.store.repository import CampaignRepository

#: what a generator's report keeps in the round summary (the per-point arrays are left out)
_MODEL_KEYS = ("model", "features", "acquisition", "fitted", "n_train", "n_candidates", "pruned",
               "cv_seconds", "fit_seconds", "noise_std_mean", "evolved", "evolve_seconds", "parego_weights",
               "feasibility", "failed_seen", "multi_objective", "reference", "select_seconds", "prior",
               "explain", "explain_objectives", "explain_skipped", "generative", "model_choice",
               "sigma_calibration", "trust_region")
_ARRAYS = ("y_true", "y_pred", "y_std")


@dataclass
class RoundSummary:
    """What one round did (handed to the progress display)."""

    round: int
    evaluated: int
    failed: int
    best_key: str | None
    best_value: float | None
    cv: dict | None = None
    pruned: int = 0
    #: which evaluation this was when not the campaign's own screening (e.g. "chgnet (promoted)")
    label: str = ""


def round_model_info(report: dict) -> dict:
    """The model part of a round summary: metrics, not the per-point arrays."""
    out = {}
    if report.get("cv"):
        out["cv"] = {k: v for k, v in report["cv"].items() if k not in _ARRAYS}
    if report.get("cv_objectives"):
        out["cv_objectives"] = {name: {k: v for k, v in cv.items() if k not in _ARRAYS}
                                for name, cv in report["cv_objectives"].items()}
    out.update({k: report[k] for k in _MODEL_KEYS if k in report})
    return out


def replace_round(doc: CampaignDoc, entry: RoundDoc) -> None:
    """Put ``entry`` in the document's rounds in place of any entry of the same round."""
    doc["rounds"] = [r for r in doc["rounds"] if r["round"] != entry["round"]] + [entry]


def sign(objective: ObjectiveConfig) -> float:
    """+1 to minimise, -1 to maximise: ``sign * value`` is smaller for better values."""
    return 1.0 if objective.goal == "minimize" else -1.0


def update_best(doc: CampaignDoc, result: ResultDoc, objective: ObjectiveConfig) -> None:
    """Make ``result`` the campaign's best if it beats the best so far."""
    value = result.get(objective.name) if result["status"] == Status.DONE else None
    if value is None:
        return
    value = float(value)
    best = doc.get("best")
    if best is None or sign(objective) * value < sign(objective) * best["value"]:
        doc["best"] = {"key": result["key"], "value": value, "formula": result["formula"],
                       "objective": objective.name}


def target_reached(doc: CampaignDoc, objective: ObjectiveConfig) -> bool:
    """Whether the best value so far reached the objective's ``target``."""
    target, best = objective.target, doc.get("best")
    if target is None or not best or best.get("value") is None:
        return False
    return sign(objective) * best["value"] <= sign(objective) * target


def stalled(doc: CampaignDoc, patience: int | None) -> bool:
    """True when the best value has not improved in the last ``patience`` rounds."""
    rounds = sorted((r for r in doc["rounds"] if "evaluated" in r), key=lambda r: r["round"])
    if not patience or len(rounds) <= patience:
        return False
    before = rounds[-patience - 1].get("best_value")
    return before is not None and rounds[-1].get("best_value") == before


def update_hull(repo: CampaignRepository, config: CampaignConfig, refs: dict[str, float],
                results: list[dict], phases: list[dict]) -> dict | None:
    """Recompute the convex hull over the done ``results`` so far; store each result's
    ``e_above_hull`` where it changed. Returns the round's hull summary (None without energies)."""
    # only the systems that results without a distance yet (this round's) can have changed
    fresh = [r for r in results if r.get("e_above_hull") is None]
    distances = (e_above_hull(results, refs, affected_systems(results, fresh), phases=phases)
                 if fresh else {})
    if not distances and not any(r.get("e_above_hull") is not None for r in results):
        return None
    known = {r["key"]: r["e_above_hull"] for r in results if r.get("e_above_hull") is not None}
    everything = {**known, **distances}
    changed = [r["key"] for r in results if r["key"] in distances
               and (r.get("e_above_hull") is None
                    or abs(r["e_above_hull"] - distances[r["key"]]) > CHANGED_EV)]
    if changed:
        docs = repo.results(keys=changed)
        for d in docs:
            d.pop("_id", None)
            d["e_above_hull"] = distances[d["key"]]
        with repo.db.transaction():
            repo.write_results(docs)
    stable = sorted(k for k, v in everything.items() if v <= CHANGED_EV)
    out = {"entries": len(everything), "stable": len(stable), "updated": len(changed), "phases": len(phases)}
    within = config.search.surrogate.stable_within
    if within is not None:
        out["stable_within"] = within
        out["within"] = sum(v <= within + CHANGED_EV for v in everything.values())
    return out


def update_pareto(doc: CampaignDoc, results: list[dict], objectives: list[ObjectiveConfig]) -> dict | None:
    """Several objectives: the Pareto front of every result so far and its hypervolume.

    The reference point is fixed the first time (each objective's ``reference``, else just
    beyond the worst value seen), so hypervolumes of later rounds are comparable.
    """
    if len(objectives) < 2:
        return None
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
