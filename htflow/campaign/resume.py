"""Resuming a campaign: which config changes a resume accepts, the campaign document, and the
candidates that were proposed but never finished.

A campaign killed at any point and started again first finishes the
candidates that have no result, then carries on: nothing is computed twice and
nothing finished is lost.
"""

from __future__ import annotations

import hashlib
import json

from pydantic import ValidationError

from htflow.errors import InputError
from htflow.schemas.config import CampaignConfig, stored_config
from htflow.schemas.documents import CampaignDoc, CampaignState, CandidateDoc, Status
from htflow.store.db import redact
from htflow.store.repository import CampaignRepository, now

#: Config fields that may change when a campaign is resumed.
RESUMABLE_CHANGES = {
    "description", "search.budget", "search.batch_size", "search.patience", "executor", "store",
}


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict) and v and k not in ("bounds", "options"):
            out.update(_flatten(v, path + "."))
        else:
            out[path] = v
    return out


def with_defaults(stored: dict) -> dict:
    """A stored config as the current version reads it: fields added since get their defaults,
    so a campaign started by an older htflow still resumes."""
    try:  # the executor may change on resume, and its files may have moved: not re-checked
        return stored_config(stored).model_dump(mode="json")
    except ValidationError:
        return stored


def _resumable(key: str) -> bool:
    return any(key == r or key.startswith(r + ".") for r in RESUMABLE_CHANGES)


def started_settings(config: CampaignConfig, repo: CampaignRepository) -> CampaignConfig:
    """``config`` with the settings its campaign started with wherever the file leaves them to the
    defaults: a campaign started by an older htflow keeps that version's defaults when resumed (a
    default may change between versions: the search model, pruning), so its file still resumes it.
    What the file sets explicitly is ``config``'s own (and checked by :func:`open_campaign`)."""
    if not repo.db.exists():
        return config
    doc = repo.doc()
    if doc is None:
        return config
    stored = _flatten(with_defaults(doc["config"]))
    new_data = config.model_dump(mode="json")
    new, explicit = _flatten(new_data), _flatten(config.model_dump(mode="json", exclude_unset=True))
    keep = {k: stored[k] for k in new if k in stored and stored[k] != new[k] and k not in explicit
            and not _resumable(k) and not any(k.startswith(e + ".") for e in explicit)}
    if not keep:
        return config
    for key, value in keep.items():
        *parents, leaf = key.split(".")
        here = new_data
        for p in parents:
            here = here[p]
        here[leaf] = value
    try:
        return CampaignConfig.model_validate(new_data)
    except ValidationError:
        return config  # a stored setting this version no longer takes: open_campaign names the change


def config_changes(old: dict, new: dict) -> list[str]:
    """Dotted fields that differ between two config dumps and may not change on resume."""
    a, b = _flatten(old), _flatten(new)
    changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return [k for k in changed if not _resumable(k)]


def open_campaign(repo: CampaignRepository, config: CampaignConfig, calculator: dict) -> CampaignDoc:
    """The campaign document: created for a new campaign, or checked against a resumed one's config.

    A campaign that stopped before its first round (a reference calculation failed, the path of an
    objective was wrong) starts afresh with the new config. The stored config never holds a password:
    a store URI is kept with its credentials hidden
    (the store may change on resume, so the stored one is only a record).
    """
    new_cfg = config.model_dump(mode="json")
    if new_cfg["store"].get("uri"):
        new_cfg["store"]["uri"] = redact(new_cfg["store"]["uri"])
    doc = repo.doc()
    if doc is not None and not doc.get("rounds") and not repo.known_keys():
        doc = None  # it stopped before proposing anything (a reference failed): start afresh, any config
    if doc is None:
        doc = {
            "name": config.name,
            "config": new_cfg,
            "config_hash": hashlib.sha256(json.dumps(new_cfg, sort_keys=True).encode()).hexdigest(),
            "state": CampaignState.RUNNING.value,
            "created_at": now(),
            "rounds": [],
            "references": {},
            "best": None,
            "calculator": calculator,
        }
        repo.save_doc(doc)
        return doc
    changed = config_changes(with_defaults(doc["config"]), new_cfg)
    if changed:
        raise InputError(
            f"campaign {config.name!r} already exists in {repo.db.location} with a different "
            f"{', '.join(changed)}; only {', '.join(sorted(RESUMABLE_CHANGES))} may change on "
            "resume. Use a new name to start another campaign."
        )
    doc["config"] = new_cfg
    return doc


def stop_settings(config: CampaignConfig) -> dict:
    """The settings that decide when a campaign stops, as recorded when it stopped."""
    return {"budget": config.search.budget, "patience": config.search.patience}


def finished(doc: CampaignDoc, config: CampaignConfig) -> bool:
    """Whether a campaign already stopped with these stop settings: then a rerun computes nothing,
    whatever its stop reason (a model that pruned everything may think otherwise on a rerun).
    Raising the budget or the patience continues it. Documents written before this rule
    (without ``stopped_with``) go through the loop as they used to."""
    recorded = doc.get("stopped_with")
    return (doc.get("state") == CampaignState.COMPLETE and recorded is not None
            and recorded == stop_settings(config))


def pending(repo: CampaignRepository) -> list[CandidateDoc]:
    """Candidates proposed or running without a result; reconciles finished ones."""
    open_ = repo.candidates(Status.open())
    if not open_:
        return []
    finished = {r["key"]: r["status"] for r in repo.results(properties=["key", "status"],
                                                            keys=[c["key"] for c in open_])}
    out = []
    for cand in open_:
        if cand["key"] in finished:  # killed between the two writes: take the result's word
            cand["status"] = finished[cand["key"]]
            repo.write_candidates(cand)
        else:
            out.append(cand)
    return out
