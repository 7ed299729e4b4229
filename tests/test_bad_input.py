"""Bad input: one clear line naming the field and what is allowed, exit 2, no traceback, nothing written."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import htflow_env, write_yaml

from htflow.cli import main


def _set(cfg: dict, path: str, value) -> dict:
    cfg = copy.deepcopy(cfg)
    *parents, last = path.split(".")
    node = cfg
    for p in parents:
        node = node.setdefault(p, {})
    if value is _DELETE:
        node.pop(last)
    else:
        node[last] = value
    return cfg


_DELETE = object()

# (id, path, value, words the message must contain)
CASES = [
    ("unknown-element", "space.elements", ["Cu", "Xx"], ["space.elements[1]", "'Xx'", "not a chemical element"]),
    ("lowercase-element", "space.elements", ["cu", "Ni"], ["space.elements[0]", "'cu'"]),
    ("duplicate-element", "space.elements", ["Cu", "Cu"], ["space.elements", "Cu is listed twice"]),
    ("no-elements", "space.elements", [], ["space: elements", "at least one element"]),
    ("negative-bound", "space.bounds", {"Cu": [-0.1, 0.5]}, ["space.bounds.Cu", "outside [0, 1]"]),
    ("crossed-bounds", "space.bounds", {"Cu": [0.8, 0.2]}, ["space.bounds.Cu", "greater than max"]),
    ("empty-bounds", "space.bounds", {"Cu": [0.6, 1], "Ni": [0.6, 1]}, ["space.bounds", "add up to 1.2 > 1"]),
    ("bound-foreign-element", "space.bounds", {"Fe": [0, 0.5]}, ["space.bounds", "'Fe'", "not one of"]),
    ("bound-not-a-pair", "space.bounds", {"Cu": [0.1]}, ["space.bounds.Cu"]),
    ("step-not-1-over-k", "space.step", 0.3, ["space.step", "0.3", "1/k"]),
    ("step-unrealisable", "space.step", 0.1, ["space.step", "1.6 atoms", "allowed steps"]),
    ("step-negative", "space.step", -0.25, ["space.step", "greater than or equal to 0.0001"]),
    ("step-tiny", "space.step", 1e-300, ["space.step", "greater than or equal to 0.0001", "got 1e-300"]),
    ("step-as-string", "space.step", "0.125", ["space.step", "valid number", "'0.125'"]),
    ("max-elements-bool", "space.max_elements", True, ["space.max_elements", "valid integer", "True"]),
    ("max-pool-float", "space.max_pool", 1e40, ["space.max_pool", "valid integer"]),
    ("max-pool-huge", "space.max_pool", 10**40, ["space.max_pool", "less than or equal to 1000000000"]),
    ("seed-negative", "search.seed", -1, ["search.seed", "greater than or equal to 0"]),
    ("seed-too-big", "search.seed", 2**80, ["search.seed", "less than or equal to 4294967295"]),
    ("budget-float", "search.budget", 1e100, ["search.budget", "valid integer"]),
    ("budget-huge", "search.budget", 10**30, ["search.budget", "less than or equal to 1000000000"]),
    ("steps-float", "calculator.steps", 1e20, ["calculator.steps", "valid integer"]),
    ("batch-as-string", "search.batch_size", "4", ["search.batch_size", "valid integer", "'4'"]),
    ("target-nan", "objectives", [{"name": "formation_energy_per_atom", "target": float("nan")}],
     ["objectives[0].target", "finite number"]),
    ("objective-twice", "objectives", [{"name": "formation_energy_per_atom"},
                                       {"name": "formation_energy_per_atom", "goal": "maximize"}],
     ["objectives", "formation_energy_per_atom is listed more than once"]),
    ("store-empty", "store", "", ["store.path", "at least 1 character"]),
    ("mode-typo", "space.mode", "grdi", ["space.mode", "'grid', 'continuous' or 'list'", "'grdi'"]),
    ("max-elements-0", "space.max_elements", 0, ["space.max_elements", "greater than or equal to 1"]),
    ("max-elements-too-many", "space.max_elements", 5, ["space.max_elements", "1 to 3"]),
    ("grid-too-large", "space", {"elements": ["Al", "Cu", "Ag", "Au", "Ni", "Pd", "Pt", "H", "C", "N", "O"],
      "step": 0.0625},
     ["grid has", "compositions", "mode: continuous"]),
    ("grid-empty", "space", {"elements": ["Cu", "Ni", "Pd"], "step": 0.5, "bounds": {"Cu": [0.3, 0.4]}},
     ["no grid point"]),
    ("continuous-bound-no-atom", "space", {"elements": ["Cu", "Ni"], "mode": "continuous",
     "bounds": {"Cu": [0.01, 0.02]}}, ["space.bounds.Cu", "no whole number of atoms"]),
    ("continuous-with-step", "space", {"elements": ["Cu", "Ni"], "mode": "continuous", "step": 0.25},
     ["space.step", "continuous space has no step"]),
    ("n-atoms-not-multiple", "structure.n_atoms", 30, ["structure.n_atoms", "30", "multiple of the 4"]),
    ("n-atoms-zero", "structure.n_atoms", 0, ["structure.n_atoms", "greater than or equal to 1"]),
    ("unknown-prototype", "structure.prototype", "fcc2", ["structure.prototype", "'fcc2'", "fcc, bcc, hcp"]),
    ("unknown-calculator", "calculator.name", "vasp2", ["calculator.name", "'vasp2'", "allowed: chgnet, emt, experiment, lookup"]),
    ("bad-calculator-path", "calculator.name", "no_such_module:Calc", ["calculator.name", "cannot import"]),
    ("calculator-not-a-calculator", "calculator.name", "htflow.space.compositions:composition_key",
     ["calculator.name", "expected a jobflow Maker"]),
    ("element-without-emt-parameters", "space.elements", ["Cu", "Ni", "Fe"], ["calculator 'emt'", "Fe", "supports"]),
    ("fmax-zero", "calculator.fmax", 0, ["calculator.fmax", "greater than 0"]),
    ("unknown-objective", "objectives", [{"name": "formation_enrgy"}],
     ["objectives[0].name", "did you mean 'formation_energy_per_atom'"]),
    ("bad-goal", "objectives", [{"name": "energy_per_atom", "goal": "minimise"}],
     ["objectives[0].goal", "'minimize' or 'maximize'"]),
    ("no-objectives", "objectives", [], ["objectives", "at least 1"]),
    ("budget-zero", "search.budget", 0, ["search.budget", "greater than or equal to 1", "got 0"]),
    ("budget-missing", "search.budget", _DELETE, ["search.budget", "required"]),
    ("budget-not-a-number", "search.budget", "lots", ["search.budget", "valid integer", "'lots'"]),
    ("batch-negative", "search.batch_size", -1, ["search.batch_size"]),
    ("unknown-sampler", "search.sampler", "sobel", ["search.sampler", "'sobel'", "grid, random, sobol"]),
    ("unknown-surrogate-model", "search.surrogate", {"model": "gpp"},
     ["search.surrogate.model", "'gpp'", "gp-plain, gp, gp-iso, forest"]),
    ("unknown-featurizer", "search.surrogate", {"features": "fractions+magpi"},
     ["search.surrogate.features", "'magpi'", "fractions, pairs, magpie"]),
    ("unknown-acquisition", "search.surrogate", {"acquisition": "EI"},
     ["search.surrogate.acquisition", "'EI'", "greedy, ucb, ei, pi, thompson, explore"]),
    ("model-as-initial-sampler", "search.surrogate", {"initial_sampler": "surrogate"},
     ["search.surrogate.initial_sampler", "space-filling", "grid, random, sobol"]),
    ("bad-batch-mode", "search.surrogate", {"batch": "diverse"}, ["search.surrogate.batch", "'believer' or 'top'"]),
    ("patience-zero", "search.patience", 0, ["search.patience", "greater than or equal to 1"]),
    ("unknown-prune-key", "search.surrogate", {"prune": {"kapa": 2}}, ["search.surrogate.prune.kapa", "did you mean 'kappa'"]),
    ("lookup-without-table", "calculator", {"name": "lookup"}, ["calculator.options", "table", "emt-fcc7"]),
    ("lookup-missing-table", "calculator", {"name": "lookup", "options": {"table": "nope.csv"}},
     ["calculator.options.table", "'nope.csv'", "neither a bundled table"]),
    ("unknown-top-key", "bugdet", 10, ["bugdet", "unknown key", "allowed keys here"]),
    ("unknown-nested-key", "search.bugdet", 10, ["search.bugdet", "did you mean 'budget'"]),
    ("bad-name", "name", "my campaign!", ["name", "letters, digits"]),
    ("unknown-executor", "executor", {"type": "slurm"}, ["executor.type", "'local', 'dask' or 'fireworks'"]),
    ("workers-without-dask", "executor", {"workers": 4}, ["executor", "workers only apply to type dask, not local"]),
    ("workers-zero", "executor", {"type": "dask", "workers": 0}, ["executor.workers", "greater than or equal to 1"]),
    ("address-and-cluster", "executor", {"type": "dask", "address": "tcp://h:8786", "cluster": "c.yaml"},
     ["executor", "either address", "or cluster"]),
    ("bad-address", "executor", {"type": "dask", "address": "h:8786"}, ["executor.address", "tcp|tls"]),
    ("missing-cluster-file", "executor", {"type": "dask", "cluster": "nope.yaml"},
     ["cluster file nope.yaml does not exist", "cluster/"]),
    ("walltime-zero", "executor", {"walltime": 0}, ["executor.walltime", "greater than 0"]),
    ("walltime-fireworks", "executor", {"type": "fireworks", "walltime": 60}, ["walltime does not apply", "my_qadapter"]),
    ("pack-typo", "executor", {"type": "dask", "pack": "atuo"}, ["executor.pack", "'auto' or a number", "'atuo'"]),
    ("bad-store-scheme", "store", "mysql://db/x", ["store", "unsupported URI scheme 'mysql'", "mongodb://"]),
    ("bad-mongodb-uri", "store", "mongodb://user:secret@host:notaport", ["store.uri", "not a valid MongoDB URI"]),
    ("store-backend-typo", "store", {"backend": "mongo"}, ["store.backend", "'embedded', 'mongodb' or 'memory'"]),
    ("mongodb-without-uri", "store", {"backend": "mongodb"}, ["store", "needs uri"]),
    ("constraint-key-typo", "space.constraints", {"max_costs": 5}, ["space.constraints.max_costs", "max_cost"]),
    ("constraint-negative-cost", "space.constraints", {"max_cost": -1}, ["space.constraints.max_cost"]),
    ("constraint-unknown-pair", "space.constraints", {"forbidden_pairs": [["Cu", "Fe"]]},
     ["forbidden_pairs", "Fe is not one of space.elements"]),
    ("constraint-pair-shape", "space.constraints", {"forbidden_pairs": [["Cu"]]}, ["forbidden_pairs"]),
    ("constraint-negative-price", "space.constraints", {"max_cost": 10, "prices": {"Cu": -1}},
     ["space.constraints.prices.Cu"]),
    ("constraint-infeasible", "space.constraints", {"max_density": 1.0},
     ["no grid composition satisfies the constraints"]),
    ("mlip-device-typo", "calculator", {"name": "chgnet", "options": {"device": "gpu"}},
     ["calculator.options.device", "'auto', 'cpu' or 'cuda'"]),
    ("phases-missing", "reference_phases", "phases.csv", ["reference_phases", "'phases.csv' does not exist"]),
    ("stable-within-negative", "search.surrogate", {"stable_within": -0.01},
     ["search.surrogate.stable_within", "greater than or equal to 0"]),
    ("multi-objective-typo", "search.surrogate", {"multi_objective": "ehv"},
     ["search.surrogate.multi_objective", "'auto', 'ehvi' or 'parego'", "'ehv'"]),
    ("objective-reference-type", "objectives", [{"name": "formation_energy_per_atom", "reference": "high"}],
     ["objectives[0].reference", "valid number"]),
]


def _run(argv, capsys) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize(("case", "path", "value", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_campaign_file(case, path, value, words, small_campaign, tmp_path, capsys):
    cfg = _set(small_campaign, path, value)
    file = write_yaml(tmp_path / "bad.yaml", cfg)
    code, out, err = _run(["run", str(file)], capsys)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "bad.yaml" in lines[0]
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert "Traceback" not in err + out
    assert "secret" not in err  # credentials never echoed
    assert not (tmp_path / "htflow-data").exists(), "nothing may be written"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("name: x\nspace: [\n", ["malformed YAML", "line"]),
        ("", ["must be a YAML mapping", "empty"]),
        ("- a\n- b\n", ["must be a YAML mapping", "list"]),
        ("name: x\n\tspace: {}\n", ["malformed YAML"]),
        ("name: x\nsearch: {}\nname: y\n", ["key 'name' appears twice (lines 1 and 3)"]),
        ("name: x\nsearch: {seed: " + "9" * 5000 + "}\n", ["a value cannot be read", "4300 digits"]),
        ("name: x\ndescription: " + "[" * 5000 + "]" * 5000 + "\n", ["nested deeper than 40 levels"]),
        ("name: x\ndescription: " + "[" * 45 + "]" * 45 + "\n", ["nested deeper than 40 levels"]),
        ("name: x\n" + "#" * (1 << 20) + "\n", ["larger than 1 MiB"]),
        # a "billion laughs": nine aliases of nine aliases..., 10^9 values from 700 bytes
        ("name: x\ndescription:\n  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
            f"  {c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)),
         ["expands to more than 100000 values"]),
    ],
)
def test_malformed_yaml(text, words, tmp_path, capsys):
    file = tmp_path / "bad.yaml"
    file.write_text(text)
    code, _, err = _run(["run", str(file)], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    for w in words:
        assert w in err
    assert not (tmp_path / "htflow-data").exists()


def test_missing_file_and_folder(tmp_path, capsys):
    code, _, err = _run(["run", "nope.yaml"], capsys)
    assert code == 2 and "no such campaign file" in err
    code, _, err = _run(["run", str(tmp_path)], capsys)
    assert code == 2 and "is a folder" in err
    code, _, err = _run(["validate", "/dev/zero"], capsys)
    assert code == 2 and "is not a regular file" in err and len(err.strip().splitlines()) == 1


def test_store_path_is_a_file(small_campaign, tmp_path, capsys):
    (tmp_path / "data").write_text("not a folder")
    file = write_yaml(tmp_path / "c.yaml", {**small_campaign, "store": "data"})
    code, _, err = _run(["run", str(file)], capsys)
    assert code == 2 and "store.path" in err and "not a folder" in err


def test_bad_cluster_file(small_campaign, tmp_path, capsys):
    cluster = write_yaml(tmp_path / "slurm.yaml", {"type": "slurm", "jobqueue": {"cores": 4, "quue": "x"}})
    file = write_yaml(tmp_path / "c.yaml", {**small_campaign, "executor": {"type": "dask", "cluster": str(cluster)}})
    code, _out, err = _run(["run", str(file)], capsys)
    assert code == 2
    assert "unknown setting(s) quue for SLURMCluster" in err and "queue" in err and "Traceback" not in err
    assert not (tmp_path / "htflow-data").exists()
    code, _out, err = _run(["run", str(small_campaign_file(small_campaign, tmp_path)), "--cluster", "nope.yaml"],
                           capsys)
    assert code == 2 and "cluster file nope.yaml does not exist" in err


def small_campaign_file(cfg: dict, tmp_path: Path) -> Path:
    return write_yaml(tmp_path / "plain.yaml", cfg)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["query", "--filter", "{bad json"], ["--filter", "not valid JSON"]),
        (["query", "--filter", '{"$where": "sleep(1)"}'], ["'$where' is not allowed"]),
        (["query", "--filter", '{"x": {"$function": {}}}'], ["'$function' is not allowed"]),
        (["query", "--filter", "[1, 2]"], ["must be a JSON object"]),
        (["query", "--fields", "a;drop table"], ["invalid field name"]),
        (["query", "--sort", "x'--"], ["invalid field name"]),
        (["query", "--collection", "secrets"], ["unknown collection", "allowed"]),
        (["status", "nope"], ["no campaign named 'nope'"]),
        (["export", "nope"], ["no campaign named 'nope'"]),
        (["query", "--store", "mysql://x"], ["unsupported URI scheme"]),
        (["serve", "--public-url", "db.example.org"], ["--public-url", "not an http(s) URL"]),
        (["serve", "--store", "nowhere"], ["no htflow store at nowhere"]),
        (["report", "nope"], ["no campaign named 'nope'"]),
    ],
)
def test_bad_cli_arguments(argv, words, tmp_path, capsys):
    from htflow.schemas.config import StoreConfig
    from htflow.store.db import CampaignDB

    with CampaignDB(StoreConfig()):  # an existing, empty store
        pass
    code, _out, err = _run(argv, capsys)
    assert code == 2, err
    for w in words:
        assert w in err
    assert "Traceback" not in err


def test_query_without_store_says_so(capsys):
    code, _, err = _run(["query"], capsys)
    assert code == 2 and "no htflow store" in err
    assert not Path("htflow-data").exists()


def test_usage_errors_exit_2_with_one_line(capsys):
    code, _, err = _run(["query", "--limit", "-1"], capsys)
    assert code == 2 and err.strip().splitlines() == [
        "error: Invalid value for '--limit': Input should be greater than or equal to 0 (see htflow query --help)"]
    code, _, err = _run(["frobnicate"], capsys)
    assert code == 2 and err.strip().splitlines() == ["error: No such command 'frobnicate'. (see htflow --help)"]
    code, _, err = _run(["run", "--nope"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "No such option: --nope" in err


def test_output_paths_that_cannot_be_written(small_campaign, tmp_path, capsys):
    cfg = {**small_campaign, "search": {"sampler": "sobol", "batch_size": 2, "budget": 2, "seed": 1}}
    assert _run(["run", "-q", str(write_yaml(tmp_path / "c.yaml", cfg))], capsys)[0] == 0
    (tmp_path / "report.html").write_text("mine")
    for argv, words in ((["export", "small", "-o", "missing/x.json"], "the folder missing does not exist"),
                        (["export", "small", "-o", "/dev/full"], "cannot write /dev/full"),
                        (["report", "small", "-o", "report.html"], "exists and is not a folder")):
        code, _, err = _run(argv, capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1 and words in err, err
    assert (tmp_path / "report.html").read_text() == "mine"


def test_real_process_prints_no_traceback(small_campaign, tmp_path):
    file = write_yaml(tmp_path / "bad.yaml", _set(small_campaign, "search.budget", 0))
    proc = subprocess.run(
        [sys.executable, "-m", "htflow.cli", "run", str(file)],
        capture_output=True, text=True, env=htflow_env(), timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: ")
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "htflow-data").exists()
