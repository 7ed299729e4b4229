"""One round's proposals: ask the generator, realise its compositions on the cell, and record them
(with the model's predictions, and the candidates it pruned) before anything is computed."""

from __future__ import annotations

from htflow.campaign.rounds import replace_round, round_model_info
from htflow.datasets.importer import aggregate
from htflow.schemas.config import CampaignConfig
from htflow.schemas.documents import CampaignDoc, CandidateDoc, Status
from htflow.search.context import Generator, ProposalContext
from htflow.space.compositions import CompositionSpace, composition_key
from htflow.space.structures import StructureBuilder
from htflow.store.repository import CampaignRepository, now


class Proposer:
    """Proposes a campaign's rounds with its generator; keeps the enumerated grid between rounds."""

    def __init__(self, config: CampaignConfig, repo: CampaignRepository, space: CompositionSpace,
                 builder: StructureBuilder, generator: Generator, phases: list[dict]):
        self.config, self.repo, self.space, self.builder = config, repo, space, builder
        self.generator, self.phases = generator, phases
        self._pool: list[dict[str, float]] | None = None
        self._prior: list[dict] | None = None
        #: the generator's report of the last round (model metrics, predictions, pruned keys)
        self.last_report: dict = {}

    def context(self, rnd: int, known: set[str], doc: CampaignDoc | None) -> ProposalContext:
        """What the generator sees in round ``rnd``."""
        cfg = self.config
        refs = (doc or {}).get("references") or {}
        return ProposalContext(
            space=self.space, builder=self.builder, known=known, round=rnd, seed=cfg.search.seed,
            results=self.repo.summaries(o.name for o in cfg.objectives), objective=cfg.objective,
            objectives=list(cfg.objectives), reference=(doc or {}).get("hv_reference"),
            references={el: v["energy_per_atom"] for el, v in refs.items()}, phases=self.phases,
            prior=self.prior(), _pool=self._pool,
        )

    def prior(self) -> list[dict]:
        """The warm-start data (``search.prior``), read once per driver."""
        if self._prior is None:
            name = self.config.objective.name
            self._prior = [{"key": key, "composition": row["composition"], "value": row["mean"],
                            "std": row["std"], "n": row["n"], "source": source}
                           for source in self.config.search.prior
                           for key, row in sorted(aggregate(self.repo.db, source, name).items())]
        return self._prior

    def _candidates(self, rnd: int, proposals: list[dict[str, float]], known: set[str],
                    predictions: dict) -> list[CandidateDoc]:
        cands = []
        for fractions in proposals:
            counts = self.builder.realise(fractions)
            key = composition_key(counts)
            if key in known:
                continue
            total = sum(counts.values())
            cands.append({
                "campaign": self.config.name, "key": key, "round": rnd, "status": Status.PROPOSED.value,
                "counts": counts, "composition": {el: c / total for el, c in counts.items()},
                "proposed_at": now(), "prediction": predictions.get(key),
            })
        return cands

    def propose(self, rnd: int, known: set[str], n: int,
                doc: CampaignDoc | None = None) -> list[CandidateDoc]:
        """Up to ``n`` new candidates for round ``rnd``, written (status ``proposed``) with the round's
        summary, in one transaction."""
        ctx = self.context(rnd, known, doc)
        proposals = self.generator.propose(ctx, n)[:n]
        self._pool = ctx._pool  # enumerate the grid once per campaign, not per round
        report = self.last_report = ctx.report
        cands = self._candidates(rnd, proposals, known, report.get("predictions", {}))
        with self.repo.db.transaction():
            if "pruned_keys" in report:
                self.record_pruned(rnd, report["pruned_keys"], {c["key"] for c in cands})
            if cands:
                self.repo.write_candidates(cands)
            if doc is not None:
                entry = {"round": rnd, "proposed": len(cands), "phase": report.get("phase")}
                entry.update(round_model_info(report))
                if report.get("cv"):
                    doc["cv_predictions"] = {k: report["cv"][k] for k in ("y_true", "y_pred", "y_std")}
                    doc["cv_predictions"]["round"] = rnd
                replace_round(doc, entry)
                self.repo.save_doc(doc)
        return cands

    def record_pruned(self, rnd: int, pruned: dict[str, dict], proposed: set[str]) -> None:
        """Mark newly pruned candidates; forget the ones the model now thinks better of."""
        before = {d["key"] for d in self.repo.candidates(Status.PRUNED, properties=["key"])}
        revived = [k for k in before if k not in pruned or k in proposed]
        if revived:
            self.repo.forget_pruned(revived)
        new = []
        for key, p in pruned.items():
            if key in before or key in proposed:
                continue
            counts = self.builder.realise(p["composition"])
            total = sum(counts.values())
            new.append({
                "campaign": self.config.name, "key": key, "round": rnd, "status": Status.PRUNED.value,
                "counts": counts, "composition": {el: c / total for el, c in counts.items()},
                "pruned": p["pruned"],
            })
        if new:
            self.repo.write_candidates(new)

    def stop_reason_when_empty(self) -> str:
        """Why a round that proposed nothing ends the campaign."""
        rep = self.last_report
        if rep.get("pruned") and rep.get("pruned") == rep.get("n_candidates"):
            return (f"the model pruned all {rep['pruned']} remaining candidates "
                    "(none can beat the best; see search.surrogate.prune)")
        return "no candidates left in the space"
