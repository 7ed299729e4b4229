"""The generative sampler: a conditional VAE over compositions proposing candidates the surrogate ranks."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from helpers import ROOT, StopAfter, cli_in_process, write_yaml
from pymatgen.core import Composition
from test_active import pool_campaign, proposals_by_round, run

from htflow.campaign.replay import pool_values, replay
from htflow.campaign.validation import parse_config
from htflow.search.registry import get_generator
from htflow.space.build import build_space

pytest.importorskip("torch")
pytestmark = pytest.mark.slow

FAST = {"epochs": 150, "samples": 512}


class Synthetic(dict):
    """Values of any composition key, computed when first asked for: low where Cu and Pd mix."""

    def __missing__(self, key: str) -> float:
        x = Composition(key).fractional_composition
        value = -(x["Cu"] * x["Pd"]) + 0.3 * x["Al"] + 0.05 * x["Ag"]
        self[key] = float(value)
        return self[key]


def continuous_config(seed: int = 0, budget: int = 24) -> dict:
    """workflows/hea-continuous.yaml (bounds, five of seven elements, cost, density, forbidden pairs)
    with the generative sampler."""
    data = yaml.safe_load((ROOT / "workflows" / "hea-continuous.yaml").read_text())
    data["search"] = {"sampler": "generative", "batch_size": 8, "budget": budget, "seed": seed,
                      "surrogate": {"initial": 8, "candidates": 256}, "generative": FAST}
    return data


def test_proposals_keep_the_bounds_and_constraints_of_a_continuous_space():
    cfg = parse_config(continuous_config())
    space = build_space(cfg.space)
    trace = replay(cfg, get_generator("generative", cfg.search.surrogate, cfg.search.generative),
                   Synthetic(), 24)
    assert len(trace.keys) == 24 == len(set(trace.keys))
    for key in trace.keys:
        fractions = {el.symbol: x for el, x in Composition(key).fractional_composition.items()}
        assert all(abs(32 * x - round(32 * x)) < 1e-9 for x in fractions.values())  # whole atoms of 32
        assert space.contains(fractions), key  # bounds, at most five elements, cost, density, pairs
    generated = [r["generative"] for r in trace.reports if r.get("generative")]
    assert len(generated) == 2 and all(g["valid"] > 20 for g in generated)
    assert all(g["loss"][-1] < g["loss"][0] for g in generated)  # it learned something
    lo, hi = generated[-1]["target"]
    done = sorted(trace.values[:16])
    assert lo < done[0] <= hi <= done[2]  # values as good as the best few, and beyond the best


def test_the_same_seed_proposes_the_same_and_a_resumed_campaign_continues_the_same_sequence():
    cfg = parse_config(continuous_config(seed=4))
    gen = get_generator("generative", cfg.search.surrogate, cfg.search.generative)
    first = replay(cfg, gen, Synthetic(), 24).keys
    again = replay(cfg, get_generator("generative", cfg.search.surrogate, cfg.search.generative),
                   Synthetic(), 24).keys
    assert first == again
    # a real campaign on the bundled EMT table, interrupted mid-round, proposes what an uninterrupted one does
    sampler = {"sampler": "generative", "generative": FAST}
    whole, _ = run(pool_campaign(name="whole", seed=2, budget=20, **sampler))
    with pytest.raises(KeyboardInterrupt):
        run(pool_campaign(name="cut", seed=2, budget=20, **sampler), progress=StopAfter(14))
    cut, doc = run(pool_campaign(name="cut", seed=2, budget=20, **sampler))
    assert proposals_by_round(cut) == proposals_by_round(whole)
    assert any(r.get("generative") for r in doc["rounds"])


def test_generative_beats_random_on_a_small_space():
    """Best formation energy found in 16 evaluations of the Cu-Ni-Pd-Au grid (130 compositions, EMT
    table), median of five seeds: the generative sampler finds lower energies than random selection."""
    base = parse_config(pool_campaign())
    values = pool_values(base, "emt-fcc7")
    best = {}
    for sampler in ("generative", "random"):
        found = []
        for seed in range(5):
            cfg = parse_config(pool_campaign(seed=seed, sampler=sampler, budget=16,
                                             **({"generative": FAST} if sampler == "generative" else {})))
            trace = replay(cfg, get_generator(sampler, cfg.search.surrogate, cfg.search.generative), values, 16)
            found.append(min(trace.values))
        best[sampler] = float(np.median(found))
    spread = max(values.values()) - min(values.values())
    assert best["generative"] < best["random"] - 0.02 * spread, best


def test_bad_generative_settings_are_one_line(tmp_path, monkeypatch):
    data = pool_campaign(sampler="surrogate")
    data["search"]["generative"] = {"epochs": 10}
    code, out, err = cli_in_process(["run", str(write_yaml(tmp_path / "a.yaml", data))], cwd=tmp_path)
    assert code == 2 and out == "" and err.count("\n") == 1 and "search.generative" in err and "sampler: generative" in err
    data = pool_campaign(sampler="generative")
    data["search"]["generative"] = {"temperature": 0}
    code, _, err = cli_in_process(["run", str(write_yaml(tmp_path / "b.yaml", data))], cwd=tmp_path)
    assert code == 2 and "search.generative.temperature" in err
    from htflow.search import generative

    monkeypatch.setattr(generative, "available", lambda: False)
    file = write_yaml(tmp_path / "c.yaml", pool_campaign(sampler="generative"))
    code, _, err = cli_in_process(["run", str(file)], cwd=tmp_path)
    assert code == 2 and "needs PyTorch" in err and "htflow[generative]" in err
    assert not (tmp_path / "htflow-data").exists()


def test_the_inverse_design_workflow_runs_and_is_explained(tmp_path):
    """workflows/inverse-design.yaml (27 elements, measured hardness replayed) for three model rounds:
    generative rounds, explanations, and both in the report."""
    import shutil

    shutil.copytree(ROOT / "workflows", tmp_path / "workflows")
    data = yaml.safe_load((tmp_path / "workflows" / "inverse-design.yaml").read_text())
    data["search"]["budget"] = 20
    data["search"]["generative"]["epochs"] = 200
    write_yaml(tmp_path / "workflows" / "inverse-design.yaml", data)
    code, out, err = cli_in_process(["run", "-q", "workflows/inverse-design.yaml"], cwd=tmp_path)
    assert code == 0, err
    assert "20 done and 0 failed in all; stopped: budget spent" in out
    code, out, err = cli_in_process(["explain", "hea-inverse"], cwd=tmp_path)
    assert code == 0, err
    ranked = [ln.split("│")[2].strip() for ln in out.splitlines()
              if ln.count("│") == 6 and ln.split("│")[1].strip().isdigit()]
    assert len(ranked) == 10 and any(r.startswith("other (") for r in ranked)  # >10 elements: grouped
    code, out, err = cli_in_process(["report", "hea-inverse", "-o", "rep"], cwd=tmp_path)
    assert code == 0, err
    assert (tmp_path / "rep" / "generative.png").stat().st_size > 5000
    assert "Generative sampler" in (tmp_path / "rep" / "index.html").read_text()
