"""A read-only view of one campaign: its config, space and stored documents, without calculators,
executors or generators (what the report, the dashboard and ``htflow status`` need)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from htflow.analysis.hull import load_phases
from htflow.calculators.lookup import table_column, table_path
from htflow.datasets.oracle import Oracle
from htflow.errors import InputError
from htflow.schemas.config import CampaignConfig, stored_config
from htflow.schemas.documents import CampaignDoc, ResultDoc, Status
from htflow.search.features import bind_builder, fraction_matrix, get_featurizer
from htflow.search.planner import surrogate_settings
from htflow.search.surrogates import get_surrogate
from htflow.space.build import build_space, make_builder
from htflow.space.compositions import CompositionSpace, composition_key
from htflow.space.structures import ExactBuilder, StructureBuilder
from htflow.store.db import CampaignDB
from htflow.store.repository import CampaignRepository


@dataclass
class CampaignView:
    """One campaign as stored: config, space, structure builder, reference phases and its documents."""

    config: CampaignConfig
    db: CampaignDB
    space: CompositionSpace = field(init=False)
    builder: StructureBuilder | ExactBuilder = field(init=False)
    repo: CampaignRepository = field(init=False)
    phases: list[dict] = field(init=False)

    def __post_init__(self) -> None:
        cfg = self.config
        self.space = build_space(cfg.space)
        self.builder = make_builder(cfg)
        self.repo = CampaignRepository(self.db, cfg.name)
        try:
            phases = cfg.reference_phases
            self.phases = load_phases(phases, self.space.elements) if phases else []
        except InputError:  # the file has moved since the campaign ran: the hull goes without it
            self.phases = []

    @classmethod
    def open(cls, db: CampaignDB, doc: CampaignDoc) -> CampaignView:
        """The view of a stored campaign document (its config read by this version of htflow)."""
        return cls(stored_config(doc["config"], db.cfg), db)

    @property
    def name(self) -> str:
        return self.config.name

    def doc(self) -> CampaignDoc | None:
        return self.repo.doc()

    def summaries(self) -> list[dict]:
        """Results without structures, with every objective."""
        return self.repo.summaries(o.name for o in self.config.objectives)

    def best(self, n: int = 10) -> list[ResultDoc]:
        """The ``n`` best done results by the primary objective."""
        return self.repo.best(self.config.objective.name, self.config.objective.goal, n)


#: the campaign settings a bundled ground-truth table was computed with (benchmarks/pools/*.yaml)
TABLE_SETTINGS = {"emt-fcc7": {"calculator": "emt", "prototype": "fcc", "n_atoms": 32, "relax": True,
                               "fmax": 0.05}}


def ground_truth(view: CampaignView, objective: str, keys: list[str],
                 pool: list[dict]) -> tuple[list, str] | None:
    """The objective's true value at every composition of the pool, where a table holds them all:
    an experiment's oracle, a lookup campaign's table, or a bundled table computed with the
    campaign's own settings. ``(values, where from)``, or None."""
    cfg = view.config
    if cfg.is_experiment and cfg.calculator.options.get("oracle"):
        oracle = Oracle(str(cfg.calculator.options["oracle"]), tuple(o.name for o in cfg.objectives))
        answers = [oracle.answer(k, p) for k, p in zip(keys, pool, strict=True)]
        values = [a.get("values", {}).get(objective) for a in answers]
        return values, f"the oracle table {Path(oracle.path).name}"
    st, calc = cfg.structure, cfg.calculator
    mine = {"calculator": calc.name, "prototype": st.prototype, "n_atoms": st.n_atoms, "relax": calc.relax,
            "fmax": calc.fmax}
    table = calc.options.get("table") if calc.name == "lookup" else next(
        (name for name, settings in TABLE_SETTINGS.items() if settings == mine), None)
    if not table:
        return None
    try:
        rows = table_column(str(table), objective)
    except InputError:
        return None
    if rows is None or any(k not in rows for k in keys):
        return None
    return [rows[k] for k in keys], f"the table {Path(table_path(str(table))).name}"


def pool_values(view: CampaignView, results: list[dict], objective: str, n_sample: int = 2000,
                seed: int = 0) -> tuple[list, str]:
    """The objective over the whole space, and where the values come from: a ground-truth table
    where one covers the space (:func:`ground_truth`); else as far as the campaign knows it, the
    computed value where a composition was evaluated and the surrogate's mean (fitted on every
    result) elsewhere."""
    space, builder = view.space, view.builder
    if space.is_grid:
        pool = space.pool()
    else:
        rng = np.random.default_rng(seed)
        pool = [p for p in (space.sample(rng) for _ in range(n_sample * 5)) if p is not None][:n_sample]
    keys = [composition_key(builder.realise(p)) for p in pool]
    truth = ground_truth(view, objective, keys, pool) if space.is_grid else None
    if truth is not None:
        return truth
    known = {r["key"]: (r.get(objective) if r.get("status") == Status.DONE else None) for r in results}
    missing = [i for i, k in enumerate(keys) if k not in known]
    values: list = [known.get(k) for k in keys]
    done = [r for r in results if r.get("status") == Status.DONE and r.get(objective) is not None]
    if missing and len(done) >= 2:
        s = surrogate_settings(view.config.search.surrogate)
        els = list(space.elements)
        featurize = get_featurizer(s.features, els)
        bind_builder([featurize], builder)  # graph features build the campaign's cells
        X = featurize(fraction_matrix([r["composition"] for r in done], els))
        model = get_surrogate(s.model, seed=seed).fit(X, np.array([r[objective] for r in done], float))
        mean, _ = model.predict(featurize(fraction_matrix([pool[i] for i in missing], els)))
        for i, m in zip(missing, mean, strict=True):
            values[i] = float(m)
    return values, "estimated by the model"
