"""Machine-learned potentials (CHGNet, SevenNet) as htflow calculators."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from htflow.campaign.loop import Campaign
from htflow.campaign.validation import parse_config
from htflow.errors import InputError

pytest.importorskip("chgnet", reason="pip install 'htflow[mlip]'")
pytest.importorskip("sevenn", reason="pip install 'htflow[mlip]'")

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _campaign(name: str, relax: bool, **options) -> dict:
    return {
        "name": f"ml-{name}",
        "space": {"elements": ["Cu", "Ni"], "step": 0.25},
        "structure": {"prototype": "fcc", "n_atoms": 4},
        "calculator": {"name": name, "relax": relax, "steps": 60, "fmax": 0.1,
                       "options": {"device": "cpu", **options}},
        "search": {"sampler": "grid", "batch_size": 5, "budget": 5},
        "store": "memory://",
    }


def _own_calculator(name: str):
    """The package's own ASE calculator, built here without htflow."""
    if name == "chgnet":
        from chgnet.model import CHGNet
        from chgnet.model.dynamics import CHGNetCalculator

        return CHGNetCalculator(model=CHGNet.load(verbose=False, use_device="cpu"), use_device="cpu")
    from sevenn.calculator import SevenNetCalculator

    return SevenNetCalculator("7net-0", device="cpu")


@pytest.mark.parametrize(("name", "relax"), [("chgnet", False), ("sevennet", False), ("chgnet", True)])
def test_campaign_energies_equal_the_package_calculator(name, relax):
    """A campaign runs end to end with the potential; every stored energy per atom equals the
    package's own calculator on the stored structure (1e-5 eV/atom)."""
    from pymatgen.core import Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    camp = Campaign(parse_config(_campaign(name, relax), "test"))
    doc = camp.run()
    done = camp.results(status="done")
    assert len(done) == 5 and doc["state"] == "complete", doc.get("stop_reason")
    own = _own_calculator(name)
    for r in done:
        atoms = AseAtomsAdaptor.get_atoms(Structure.from_dict(r["structure"]))
        atoms.calc = own
        assert r["energy_per_atom"] == pytest.approx(atoms.get_potential_energy() / len(atoms), abs=1e-5)
        assert r["calculator"]["name"] == name and r["calculator"]["package_version"] != "unknown"
        if relax and len(r["counts"]) == 2:
            assert r["n_steps"] >= 1
            assert np.abs(atoms.get_forces()).max() < 0.1 + 1e-3  # relaxed to fmax
        assert r.get("e_above_hull") is not None and r["e_above_hull"] >= -1e-9
    assert {r["key"] for r in done if len(r["counts"]) == 1} == {"Cu1", "Ni1"}
    assert all(r["formation_energy_per_atom"] == pytest.approx(0.0, abs=1e-9)
               for r in done if len(r["counts"]) == 1)


def test_batched_predictions_equal_chgnet_one_by_one():
    """htflow.calculators.batch.predict (one backward pass, batches of mixed sizes) gives CHGNet's numbers."""
    from ase.build import bulk
    from pymatgen.io.ase import AseAtomsAdaptor

    from htflow.calculators import mlip
    from htflow.calculators.batch import predict

    model = mlip.load_model("chgnet", device="cpu")
    structures = []
    for i, rep in enumerate([1, 2, 1, 2, 1]):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((rep, rep, 1))
        k = min(i + 1, len(atoms) - 1)
        atoms.symbols[:k] = "Ni" * k
        atoms.rattle(0.05, seed=i)
        structures.append(AseAtomsAdaptor.get_structure(atoms))
    got = predict(model, structures, batch_size=3)
    for s, g in zip(structures, got, strict=True):
        want = model.predict_structure(s)
        assert g["e"] == pytest.approx(float(want["e"]), abs=1e-6)
        assert np.abs(g["f"] - want["f"]).max() < 1e-4
        assert np.abs(g["s"] - want["s"]).max() < 1e-3  # GPa
        assert g["f"].shape == (len(s), 3)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"modle": "0.3.0"}, ["calculator.options", "modle", "allowed: model, device, batch_size"]),
        ({"device": "gpu"}, ["calculator.options.device", "'gpu'", "'auto', 'cpu' or 'cuda'"]),
        ({"batch_size": 0}, ["calculator.options.batch_size", "greater than or equal to 1", "0"]),
        ({"batch_size": "16"}, ["calculator.options.batch_size", "valid integer", "'16'"]),
        ({"model": "0.4.0"}, ["calculator.options.model", "'0.3.0' and '0.2.0'"]),
    ],
)
def test_bad_mlip_options(options, words):
    with pytest.raises(InputError) as err:
        parse_config(_campaign("chgnet", False, **options), "test")
    for w in words:
        assert w in str(err.value), str(err.value)


def test_batches_are_for_chgnet_only():
    with pytest.raises(InputError) as err:
        parse_config(_campaign("sevennet", False, batch_size=4), "test")
    for w in ["calculator.options.batch_size", "chgnet", "'sevennet'", "batch_size: 1"]:
        assert w in str(err.value), (w, str(err.value))


def test_mace_needs_its_model_file(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "mace" else real(name, *a))
    cfg = _campaign("mace", False)
    with pytest.raises(InputError, match="mace needs the path of a MACE .model file"):
        parse_config(cfg, "test")
    cfg["calculator"]["options"]["model"] = str(tmp_path / "missing.model")
    with pytest.raises(InputError, match="missing.model' does not exist"):
        parse_config(cfg, "test")


def test_missing_package_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sevenn" else real(name, *a))
    with pytest.raises(InputError) as err:
        parse_config(_campaign("sevennet", False), "test")
    assert "pip install 'htflow[mlip]'" in str(err.value) and "sevenn==0.13.0" in str(err.value)


def test_cuda_without_a_gpu_is_refused():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(InputError, match="torch sees no GPU"):
        parse_config(_campaign("chgnet", False, device="cuda"), "test")


@pytest.mark.slow
def test_chgnet_campaign_on_dask_workers_equals_local():
    """The same CHGNet campaign on a real Dask LocalCluster (two worker processes, each loading the
    model once) gives the local run's energies."""
    local = Campaign(parse_config(_campaign("chgnet", False), "test"))
    local.run()
    cfg = _campaign("chgnet", False)
    cfg.update(executor={"type": "dask", "workers": 2}, store="dask-data")
    dask = Campaign(parse_config(cfg, "test"))
    dask.executor.announce = lambda line: None
    doc = dask.run()
    assert doc["stop_reason"] == "budget spent"
    ours = {r["key"]: r["energy_per_atom"] for r in dask.results(status="done")}
    theirs = {r["key"]: r["energy_per_atom"] for r in local.results(status="done")}
    assert len(ours) == 5 and ours.keys() == theirs.keys()
    for k in ours:
        assert ours[k] == pytest.approx(theirs[k], abs=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["local", "dask"])
def test_batched_relaxations_equal_one_by_one(executor):
    """batch_size 2: the three alloys relax in lockstep in jobs of two and one (forces from one model
    call per step per job); energies, volumes and step counts equal atomate2's one-by-one
    relaxations, and every result is stored under its own key."""
    single = Campaign(parse_config(_campaign("chgnet", True), "test"))
    single.run()
    cfg = _campaign("chgnet", True, batch_size=2)
    if executor == "dask":
        cfg.update(executor={"type": "dask", "workers": 1}, store="dask-data")
    batched = Campaign(parse_config(cfg, "test"))
    batched.executor.announce = lambda line: None
    assert batched.batch_maker is not None and single.batch_maker is None
    doc = batched.run()
    assert doc["state"] == "complete"
    ours = {r["key"]: r for r in batched.results(status="done")}
    theirs = {r["key"]: r for r in single.results(status="done")}
    assert len(ours) == 5 and ours.keys() == theirs.keys()
    for k, r in ours.items():
        assert r["energy_per_atom"] == pytest.approx(theirs[k]["energy_per_atom"], abs=1e-5)
        assert r["volume_per_atom"] == pytest.approx(theirs[k]["volume_per_atom"], abs=1e-4)
        if len(r["counts"]) > 1:
            assert r["n_steps"] == theirs[k]["n_steps"] and r["converged"] is True
    with batched.db:
        jobs = [d["name"] for d in batched.db.job_store().query({}, properties=["name"])]
    assert sorted(n for n in jobs if "batch" in n) == ["chgnet batch of 1", "chgnet batch of 2"]


def test_one_bad_structure_fails_alone_in_a_batch():
    """A structure CHGNet cannot evaluate (oganesson) fails with the model's error; the structures
    batched with it are relaxed as usual."""
    from pymatgen.core import Lattice, Structure

    from htflow.calculators import mlip
    from htflow.calculators.batch import relax

    good = Structure(Lattice.cubic(3.6), ["Cu", "Ni", "Cu", "Ni"], [[0, 0, 0], [.5, .5, 0], [.5, 0, .5], [0, .5, .5]])
    alien = Structure(Lattice.cubic(3.0), ["Og"], [[0, 0, 0]])  # beyond CHGNet's elements
    out = relax(mlip.load_model("chgnet", device="cpu"), [good, alien, good.copy()], batch_size=3, fmax=0.1, steps=50)
    assert "Error" in out[1]["error"], out[1]
    assert out[0]["converged"] and out[2]["converged"]
    assert out[0]["energy"] == pytest.approx(out[2]["energy"], abs=1e-6)
