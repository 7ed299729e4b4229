"""The documents htflow stores, in one place: collection names, statuses and typed shapes.

The store keeps plain documents: statuses are written as their plain string
values (``Status.DONE.value``, which is ``"done"``; mongomock does not match a
``str`` subclass in ``$in``), and compare equal to the enum when read, so
stores written by earlier versions read the same. The TypedDicts say which keys a document has; keys
marked ``NotRequired`` appear only in some documents (for example a model
round's ``prediction``).
"""


from datetime import datetime
from enum import StrEnum
from typing import Any, NotRequired, TypedDict

#: collection names
CAMPAIGNS = "campaigns"
CANDIDATES = "candidates"
RESULTS = "results"
JOBS = "jobs"
JOBS_DATA = "jobs_data"
MATERIALS = "materials"
#: one document per campaign being driven: owner (host, pid), started_at, heartbeat_at
LOCKS = "locks"
#: rows of tables users imported (``htflow import``): one per row, measured or computed elsewhere
IMPORTED = "imported"
COLLECTIONS = (CAMPAIGNS, CANDIDATES, RESULTS, JOBS, JOBS_DATA, MATERIALS, LOCKS, IMPORTED)
#: the key field of each collection
KEYS = {CAMPAIGNS: "name", CANDIDATES: "key", RESULTS: "key", JOBS: "uuid", JOBS_DATA: "blob_uuid",
        MATERIALS: "material_id", LOCKS: "name",
        IMPORTED: "row_id"}
#: candidates and results are keyed by campaign and composition key together
ENTRY_KEY = ["campaign", "key"]


class Status(StrEnum):
    """The state of a candidate (and, ``done``/``failed``, of a result)."""

    PROPOSED = "proposed"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    PRUNED = "pruned"

    @classmethod
    def open(cls) -> "list[Status]":
        """Proposed or running: no result yet."""
        return [cls.PROPOSED, cls.RUNNING]

    @classmethod
    def proposed_ever(cls) -> "list[Status]":
        """Every status of a candidate that was proposed (pruned ones never were)."""
        return [cls.PROPOSED, cls.RUNNING, cls.DONE, cls.FAILED]


class CampaignState(StrEnum):
    """The state of a campaign document."""

    RUNNING = "running"
    #: an experiment campaign whose worksheet is out: waiting for measurements (``htflow ingest``)
    WAITING = "waiting"
    COMPLETE = "complete"


class Prediction(TypedDict, total=False):
    """What the model said of a candidate when it chose it (model rounds)."""

    mean: float
    std: float
    acquisition: float
    of: str


class EntryDoc(TypedDict):
    """What candidates and results share: one per (campaign, composition key)."""

    campaign: str
    key: str
    round: int
    status: Status
    counts: dict[str, int]
    #: atomic fractions as realised on the cell
    composition: dict[str, float]


class CandidateDoc(EntryDoc):
    """``candidates``: a composition proposed (or pruned) in a round."""

    proposed_at: NotRequired[datetime]
    finished_at: NotRequired[datetime]
    prediction: NotRequired[Prediction | None]
    #: why a pruned candidate was left out: round, reason, mean, std, sigma_scale, bound, best, kappa, margin
    pruned: NotRequired[dict[str, Any]]
    #: multi-fidelity: the screening campaign and reason it was promoted from
    promoted_from: NotRequired[dict[str, Any]]


class ResultDoc(EntryDoc):
    """``results``: written when a candidate's evaluation finished (``done`` or ``failed``)."""

    elements: list[str]
    nelements: int
    formula: str
    n_atoms: int
    prototype: str
    calculator: dict[str, Any]
    timings: dict[str, float | None]
    error: str | None
    created_at: datetime
    energy: NotRequired[float]
    energy_per_atom: NotRequired[float]
    formation_energy_per_atom: NotRequired[float | None]
    volume_per_atom: NotRequired[float]
    density: NotRequired[float]
    #: the relaxed structure (pymatgen dict); ``input_structure`` for failed ones
    structure: NotRequired[dict]
    input_structure: NotRequired[dict]
    n_steps: NotRequired[int | None]
    converged: NotRequired[bool | None]
    e_above_hull: NotRequired[float]
    #: ``structure.configurations`` > 1: n, std and values of every averaged number; lowest: the index of
    #: the lowest-energy decoration, whose structure is ``structure``
    configurations: NotRequired[dict[str, Any]]
    #: ``calculator.flow: elastic``: tensor_ieee_gpa (6x6), derived_properties, order
    elastic: NotRequired[dict[str, Any]]


class RoundDoc(TypedDict, total=False):
    """One entry of a campaign's ``rounds``: what the round proposed, how the model did, what came out."""

    round: int
    proposed: int
    phase: str | None
    evaluated: int
    failed: int
    best_key: str | None
    best_value: float | None
    model: str
    features: str
    acquisition: str
    n_train: int
    n_candidates: int
    pruned: int
    #: k-fold CV of the model before the round: folds, n, mae, rmse, r2, within_1sigma, within_2sigma, ...
    cv: dict[str, Any]
    #: decorations averaged (structure.configurations): the root-mean-square noise std given to the model
    noise_std_mean: float
    hull: dict[str, Any] | None
    pareto: dict[str, Any]
    promoted: dict[str, Any]
    finished_at: datetime


class BestDoc(TypedDict):
    """The best result so far by the primary objective."""

    key: str
    value: float
    formula: str
    objective: str


class CampaignDoc(TypedDict):
    """``campaigns``: one per campaign, keyed by name."""

    name: str
    config: dict[str, Any]
    config_hash: str
    state: CampaignState
    created_at: datetime
    updated_at: NotRequired[datetime]
    rounds: list[RoundDoc]
    #: each element's reference calculation: energy_per_atom, key, result, seconds
    references: dict[str, dict[str, Any]]
    best: BestDoc | None
    calculator: dict[str, Any]
    stop_reason: NotRequired[str | None]
    #: the stop settings (budget, patience) the campaign stopped with: a rerun with the same computes nothing
    stopped_with: NotRequired[dict[str, Any]]
    cv_predictions: NotRequired[dict[str, Any]]
    hv_reference: NotRequired[list[float]]
    pareto_front: NotRequired[list[str]]
    promoted_to: NotRequired[str]
    promoted_from: NotRequired[str]
