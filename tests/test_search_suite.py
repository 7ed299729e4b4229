"""The search suite's runner on a tiny pool, and its plain-GP baseline against an independent loop."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import yaml
from helpers import ROOT
from scipy.stats import norm

sys.path.insert(0, str(ROOT / "benchmarks"))

import search_suite
from baselines import PLAIN_GP, plain_gp


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Cu-Ni-Pd on a 1/8 grid (45 compositions) from the bundled EMT table."""
    folder = tmp_path_factory.mktemp("tiny")
    cfg = {"name": "tiny", "space": {"elements": ["Cu", "Ni", "Pd"], "step": 0.125},
           "structure": {"prototype": "fcc", "n_atoms": 32}}
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return search_suite._grid_pool("tiny", path, "emt-fcc7", "test")


#: the rows run on the test pool: the baseline, random, the default and the previous one, the trust
#: regions, a forest and the samplers that are not the surrogate; the others differ from these only in
#: settings (model, features, acquisition), checked to resolve without running (each is a campaign of
#: the same runner; their models and features have their own tests)
RUN = ("random", "plain GP + EI", "htflow default", "gp-plain without trust region (previous default)",
       "default + trust region", "forest + UCB", "generative", "ga")
SLOW = tuple(s for s in search_suite.STRATEGIES if s not in RUN and s not in search_suite.GRAPH)


def _resolves(pool, strategy: str) -> bool:
    """The strategy's settings validate, make a generator, and name a model and features that exist."""
    from htflow.schemas.config import CampaignConfig
    from htflow.search.features import get_featurizer
    from htflow.search.registry import get_generator
    from htflow.search.surrogates import get_surrogate

    sampler, surrogate = search_suite.STRATEGIES[strategy]
    cfg = CampaignConfig.model_validate({**pool.config, "search": {"sampler": sampler, "budget": 8,
                                                                     "surrogate": surrogate}})
    settings = cfg.search.surrogate
    models = ["gp-plain", "forest"] if settings.model == "auto" else [settings.model]  # auto: one of both
    featurizer = get_featurizer(settings.features, ["Cu", "Ni", "Pd"])
    return (get_generator(sampler, settings, cfg.search.generative) is not None and callable(featurizer)
            and all(callable(get_surrogate(m).predict) for m in models))


def test_the_runner_stops_at_the_best_and_counts_whole_batches(tiny):
    assert len(tiny.values) == 45 and tiny.best <= tiny.top
    # every strategy but the CHGNet-feature ones (a model load and a pass per cell; tests/test_graph_features.py)
    strategies = [s for s in search_suite.STRATEGIES if s not in search_suite.GRAPH and s not in SLOW]
    for s in SLOW:  # the settings-only rows
        assert _resolves(tiny, s)
    # two seeds of the baseline (the table's medians over seeds), one of each other strategy
    runs = [search_suite.run_one(tiny, s, seed) for s in strategies
            for seed in ((0, 1) if s == search_suite.PLAIN else (0,))]
    for r in runs:
        assert r["to_best"] is not None and r["to_top"] <= r["to_best"] <= 45
        assert r["to_best"] % 4 == 0 or r["to_best"] == 45  # whole batches of 4
        assert r["to_best"] - 4 < r["evaluated"] <= r["to_best"]  # it stopped in the batch that found it
    # the oracle bound: the random run's count where the best is among the first 8, else 12; no
    # strategy that starts from the same 8 random points needs fewer
    oracle = search_suite.oracle_runs(runs)
    random_run = next(r for r in runs if r["strategy"] == "random")
    assert [o["seed"] for o in oracle] == [0]
    assert oracle[0]["to_best"] == (random_run["to_best"] if random_run["to_best"] <= 8 else 12)
    for r in runs:
        if search_suite.STRATEGIES[r["strategy"]][0] == "surrogate" and r["seed"] == 0:
            assert r["to_best"] >= oracle[0]["to_best"] and r["to_top"] >= oracle[0]["to_top"], r
    lines = search_suite.table(runs + oracle, [tiny])
    assert len(lines) == 2 + len(strategies) + 1
    plain = next(line for line in lines if "| plain GP + EI |" in line)
    assert "| 1.00/1.00 |" in plain  # the baseline against itself


def test_every_strategy_can_be_named_on_the_command_line():
    assert not [s for s in search_suite.STRATEGIES if "," in s]  # --strategies splits on commas
    with pytest.raises(SystemExit):
        search_suite.main(["--strategies", "no such strategy", "--seeds", "1"])


def test_the_oracle_bound_is_the_random_start_plus_one_batch():
    runs = [{"pool": "p", "strategy": "random", "seed": s, "seconds": 1.0, "to_best": b, "to_top": t}
            for s, (b, t) in enumerate([(4, 4), (200, 8), (None, 40)])]
    got = [(o["to_best"], o["to_top"]) for o in search_suite.oracle_runs(runs)]
    assert got == [(4, 4), (12, 8), (12, 12)]
    assert all(o["strategy"] == search_suite.ORACLE for o in search_suite.oracle_runs(runs))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # the textbook GP's own chatter
def test_the_plain_gp_baseline_is_a_textbook_scikit_learn_loop(tiny):
    """The baseline replayed through htflow's surrogate sampler proposes, round by round, what a
    30-line scikit-learn loop (GP on fractions, EI, top 4) proposes from the same initial points."""
    from htflow.campaign.replay import replay
    from htflow.schemas.config import CampaignConfig
    from htflow.search.registry import get_generator
    from htflow.space.compositions import composition_key

    search = {"sampler": "surrogate", "batch_size": 4, "budget": 24, "seed": 3, "surrogate": PLAIN_GP}
    cfg = CampaignConfig.model_validate({**tiny.config, "search": search})
    trace = replay(cfg, get_generator("surrogate", cfg.search.surrogate), tiny.values, 24)
    assert len(trace.keys) == 24

    elements = ["Cu", "Ni", "Pd"]

    def fractions(key: str) -> list[float]:
        return [float(x) / 32 for x in _counts(key, elements)]

    chosen = list(trace.keys[:8])  # the same 8 random initial points
    pool = sorted(tiny.values)
    while len(chosen) < 24:
        train = sorted(chosen)
        X = np.array([fractions(k) for k in train])
        y = np.array([tiny.values[k] for k in train])
        gp = plain_gp().fit(X, y)
        rest = [k for k in pool if k not in chosen]
        mean, std = gp.predict(np.array([fractions(k) for k in rest]), return_std=True)
        std = np.maximum(std, 1e-12)
        imp = y.min() - mean
        ei = imp * norm.cdf(imp / std) + std * norm.pdf(imp / std)
        picks = [rest[i] for i in np.argsort(-ei, kind="stable")[:4]]
        assert set(picks) == set(trace.keys[len(chosen):len(chosen) + 4]), len(chosen)
        chosen += picks
    assert composition_key({"Cu": 32}) in tiny.values


def _counts(key: str, elements: list[str]) -> list[int]:
    import re

    found = {el: float(x) for el, x in re.findall(r"([A-Z][a-z]?)([0-9.]+)", key)}
    return [round(found.get(el, 0.0) * 32) for el in elements]


def test_the_gp_forest_mixture_is_the_equal_mixture_of_its_parts():
    from baselines import GPForestMixture

    rng = np.random.default_rng(1)
    X, y = rng.random((20, 3)), rng.random(20)
    mix = GPForestMixture(seed=0).fit(X, y)
    (m1, s1), (m2, s2) = (part.predict(X[:5]) for part in mix.parts)
    mean, std = mix.predict(X[:5])
    np.testing.assert_allclose(mean, (m1 + m2) / 2)
    np.testing.assert_allclose(std**2, (s1**2 + s2**2) / 2 + ((m1 - m2) / 2) ** 2)
    assert std.min() >= np.minimum(s1, s2).min()  # never narrower than the narrower part
    told = mix.condition(X[:1] + 0.01, np.array([5.0]))
    assert [len(part.y) for part in told.parts] == [21, 21] and [len(part.y) for part in mix.parts] == [20, 20]
