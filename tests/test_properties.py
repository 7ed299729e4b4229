"""Objectives from any property: the elastic flow, paths, extractors, and Makers that declare theirs."""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.eos import EquationOfState
from ase.units import GPa
from atomate2.ase.jobs import EmtRelaxMaker
from atomate2.forcefields.flows.elastic import ElasticMaker
from helpers import run_cli, write_yaml
from jobflow import run_locally
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from htflow.calculators.properties import PropertyError, read_properties, read_property
from htflow.schemas.config import StoreConfig
from htflow.store.db import CampaignDB
from htflow.store.repository import CampaignRepository


def elastic_campaign(tmp_path, objectives, **calc):
    return {
        "name": "moduli",
        "space": {"elements": ["Cu", "Ag"], "step": 0.5},
        "structure": {"prototype": "fcc", "n_atoms": 4},
        "calculator": {"name": "emt", "flow": "elastic", **calc},
        "objectives": objectives,
        "search": {"sampler": "random", "batch_size": 3, "budget": 3, "seed": 1},
        "store": str(tmp_path / "store"),
    }


def stored_results(tmp_path) -> list[dict]:
    with CampaignDB(StoreConfig(path=str(tmp_path / "store"))).connect() as db:
        return CampaignRepository(db, "moduli").results()


EXTRACTOR = '''
def c11_minus_c12(docs):
    """Cauchy-free shear modulus C' = (C11 - C12) / 2 of the elastic document."""
    c = docs["elastic"]["elastic_tensor"]["ieee_format"]
    return (c[0][0] - c[0][1]) / 2
'''


def test_elastic_campaign_equals_atomate2_elastic_flow_run_directly(tmp_path, capsys, monkeypatch):
    """A bulk-modulus campaign on EMT; each result's tensor and moduli equal atomate2's ElasticMaker
    run by hand on the same relaxed structure with the same EMT makers, and pure Cu's bulk modulus
    equals an ASE equation-of-state fit (so the units are GPa)."""
    (tmp_path / "shear_tools.py").write_text(EXTRACTOR)
    objectives = [{"name": "bulk_modulus", "goal": "maximize"},
                  {"name": "c44", "path": "elastic.elastic_tensor.ieee_format.3.3", "goal": "maximize"},
                  {"name": "c_prime", "extractor": "shear_tools:c11_minus_c12", "goal": "maximize"}]
    path = write_yaml(tmp_path / "moduli.yaml", elastic_campaign(tmp_path, objectives))
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(["run", str(path), "--quiet"], capsys)
    assert code == 0, err
    results = {r["formula"]: r for r in stored_results(tmp_path)}
    assert set(results) == {"Cu", "Ag", "CuAg"}
    assert all(r["status"] == "done" for r in results.values())

    maker = ElasticMaker(bulk_relax_maker=EmtRelaxMaker(relax_cell=True, relax_kwargs={"fmax": 1e-3}),
                         elastic_relax_maker=EmtRelaxMaker(relax_cell=False, relax_kwargs={"fmax": 1e-3}))
    for formula in ("Cu", "CuAg"):
        r = results[formula]
        flow = maker.make(Structure.from_dict(r["structure"]))
        doc = run_locally(flow, ensure_success=True, log=False, root_dir=tmp_path / formula)[
            flow.output.uuid][1].output
        ieee = np.array(doc.elastic_tensor.ieee_format)
        assert np.allclose(r["elastic"]["tensor_ieee_gpa"], ieee, atol=1e-6)
        d = doc.derived_properties
        assert r["bulk_modulus"] == pytest.approx(d.k_vrh, abs=1e-6)
        assert r["shear_modulus"] == pytest.approx(d.g_vrh, abs=1e-6)
        assert r["youngs_modulus"] == pytest.approx(d.y_mod / 1e9, abs=1e-6)
        assert r["pugh_ratio"] == pytest.approx(d.k_vrh / d.g_vrh, rel=1e-9)
        assert r["c44"] == pytest.approx(ieee[3, 3], abs=1e-6)
        assert r["c_prime"] == pytest.approx((ieee[0, 0] - ieee[0, 1]) / 2, abs=1e-6)

    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.calc = EMT()
    volumes, energies = [], []
    for x in np.linspace(0.98, 1.02, 9):
        a = atoms.copy()
        a.calc = EMT()
        a.set_cell(atoms.cell * x, scale_atoms=True)
        volumes.append(a.get_volume())
        energies.append(a.get_potential_energy())
    _, _, b = EquationOfState(volumes, energies).fit()
    assert results["Cu"]["bulk_modulus"] == pytest.approx(b / GPa, rel=0.01)
    # the run's table names the unit of the modulus
    code, out, _ = run_cli(["status", "moduli", "--store", str(tmp_path / "store")], capsys)
    assert code == 0 and "bulk_modulus: GPa" in out


def test_an_objective_path_not_in_the_documents_is_one_line_and_a_fixed_file_starts_afresh(
        tmp_path, capsys, monkeypatch):
    objectives = [{"name": "c44", "path": "elastic.elastic_tensor.ieee.3.3"}]
    cfg = elastic_campaign(tmp_path, objectives)
    cfg["space"]["elements"] = ["Cu"]
    cfg["space"]["bounds"] = {}
    cfg["search"].update(budget=1, batch_size=1)
    path = write_yaml(tmp_path / "c.yaml", cfg)
    code, _, err = run_cli(["run", str(path), "--quiet"], capsys)
    assert code == 2 and len(err) == 1
    assert "'elastic.elastic_tensor.ieee.3.3' is not in the evaluation's documents" in err[0]
    assert "elastic.elastic_tensor has no 'ieee'; it has: ieee_format, raw" in err[0]
    cfg["objectives"][0]["path"] = "elastic.elastic_tensor.ieee_format.3.3"
    write_yaml(path, cfg)
    code, _, err = run_cli(["run", str(path), "--quiet"], capsys)
    assert code == 0, err


@pytest.mark.parametrize(("objective", "calc", "words"), [
    ({"name": "c44", "path": "elast.x"}, {}, ["objectives[0].path", "starts with 'elast'", "task (", "elastic ("]),
    ({"name": "c44", "path": "elastic.x"}, {"flow": "relax"}, ["objectives[0].path", "task ("]),
    ({"name": "c44", "path": "elastic"}, {}, ["objectives[0].path", "dotted path"]),
    ({"name": "c44", "path": "task.output.energy", "extractor": "m:f"}, {}, ["path or extractor, not both"]),
    ({"name": "c44", "extractor": "no_such_module_x:f"}, {}, ["objectives[0].extractor", "no_such_module_x"]),
    ({"name": "c44", "extractor": "math:pi"}, {}, ["objectives[0].extractor", "not a function"]),
    ({"name": "bulk_modulus", "path": "task.output.energy"}, {}, ["objectives[0].name", "already stores"]),
    ({"name": "structure", "path": "task.output.energy"}, {"flow": "relax"}, ["'structure' is a field"]),
    ({"name": "bulk_modulus"}, {"flow": "relax"}, ["'bulk_modulus' is not computed", "energy_per_atom"]),
    ({"name": "bulk_modulus"}, {"flow": "phonon"}, ["calculator.flow", "'relax'", "'elastic'"]),
])
def test_bad_objective_sources_exit_2_with_one_line_and_write_nothing(tmp_path, capsys, objective, calc, words):
    cfg = elastic_campaign(tmp_path, [objective], **calc)
    path = write_yaml(tmp_path / "c.yaml", cfg)
    code, _, err = run_cli(["validate", str(path)], capsys)
    assert code == 2 and len(err) == 1, err
    assert all(w in err[0] for w in words), err[0]
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize(("calc", "words"), [
    ({"name": "lookup", "options": {"table": "emt-fcc7"}, "flow": "elastic"}, ["calculator.flow", "lookup"]),
    ({"name": "chgnet", "flow": "elastic", "options": {"batch_size": 4}}, ["batch_size", "one structure"]),
])
def test_flows_need_a_calculator_that_relaxes_one_structure_at_a_time(tmp_path, capsys, calc, words):
    cfg = elastic_campaign(tmp_path, [{"name": "formation_energy_per_atom"}])
    cfg["calculator"] = calc
    code, _, err = run_cli(["validate", str(write_yaml(tmp_path / "c.yaml", cfg))], capsys)
    assert code == 2 and len(err) == 1 and all(w in err[0] for w in words), err


MAKER = '''
from dataclasses import dataclass

from atomate2.ase.jobs import EmtRelaxMaker


def max_stress(docs):
    """Largest absolute stress component left after the relaxation (kbar)."""
    return max(abs(x) for row in docs["task"]["output"]["stress"] for x in row)


@dataclass
class StressedEmt(EmtRelaxMaker):
    """EMT relaxation that declares two properties of its task document."""

    htflow_properties = {"relax_steps": "task.output.n_steps", "max_stress": "stress_maker:max_stress"}
'''


def test_a_user_maker_declares_the_properties_it_yields(tmp_path, capsys, monkeypatch):
    (tmp_path / "stress_maker.py").write_text(textwrap.dedent(MAKER))
    cfg = elastic_campaign(tmp_path, [{"name": "max_stress"}, {"name": "relax_steps"}],
                           name="stress_maker:StressedEmt", flow="relax")
    path = write_yaml(tmp_path / "c.yaml", cfg)
    code, _, err = run_cli(["run", str(path), "--quiet"], capsys)
    assert code == 0, err
    results = stored_results(tmp_path)
    assert len(results) == 3
    for r in results:
        assert isinstance(r["relax_steps"], float) and r["relax_steps"] >= 0
        assert 0 <= r["max_stress"] < 50  # relaxed cells: little stress left (kbar)
    cfg["objectives"] = [{"name": "band_gap"}]
    code, _, err = run_cli(["validate", str(write_yaml(tmp_path / "d.yaml", cfg))], capsys)
    assert code == 2 and "max_stress" in err[0] and "relax_steps" in err[0]


def test_read_property_paths_index_lists_and_name_what_is_there():
    docs = {"task": {"output": {"energy": -3.0, "stress": [[1.0, 2.0], [3.0, 4.0]], "name": "x"}}}
    assert read_property("e", "task.output.energy", docs) == -3.0
    assert read_property("s", "task.output.stress.1.0", docs) == 3.0
    with pytest.raises(PropertyError, match=r"task.output.stress has no '2'; it is a list of 2"):
        read_property("s", "task.output.stress.2.0", docs)
    with pytest.raises(PropertyError, match=r"task.output has no 'energi'; it has: energy, name, stress"):
        read_property("e", "task.output.energi", docs)
    with pytest.raises(PropertyError, match="not a finite number"):
        read_property("n", "task.output.name", docs)
    with pytest.raises(PropertyError, match="extractor math:sqrt failed: TypeError"):
        read_property("q", "math:sqrt", docs)
    docs["task"]["output"]["nan"] = math.nan
    with pytest.raises(PropertyError, match="not a finite number"):
        read_property("n", "task.output.nan", docs)
    # only the required (the objectives) fail the evaluation; others are left out
    got = read_properties({"e": "task.output.energy", "gone": "task.output.gone"}, docs, required=("e",))
    assert got == {"e": -3.0, "gone": None}
    with pytest.raises(PropertyError):
        read_properties({"gone": "task.output.gone"}, docs, required=("gone",))


@pytest.mark.slow
def test_elastic_flow_with_an_ml_potential_equals_atomate2_run_directly(tmp_path):
    """CHGNet's elastic flow through htflow's evaluation maker equals atomate2's own force-field
    ElasticMaker with CHGNet on the same cell (CHGNet's stress-strain moduli, not its EOS's)."""
    from atomate2.forcefields.jobs import ForceFieldRelaxMaker

    from htflow.calculators.registry import get_calculator
    from htflow.campaign.validation import parse_config

    cfg = parse_config(elastic_campaign(tmp_path, [{"name": "bulk_modulus", "goal": "maximize"}], name="chgnet"))
    maker = get_calculator("chgnet").evaluation_maker(cfg)
    cu = AseAtomsAdaptor.get_structure(bulk("Cu", "fcc", a=3.61, cubic=True))
    flow = maker.make(cu)
    out = run_locally(flow, ensure_success=True, log=False, root_dir=tmp_path)[flow.output.uuid][1].output
    ff = {"force_field_name": "CHGNet", "relax_kwargs": {"fmax": 1e-3}}
    direct = ElasticMaker(bulk_relax_maker=ForceFieldRelaxMaker(relax_cell=True, **ff),
                          elastic_relax_maker=ForceFieldRelaxMaker(relax_cell=False, **ff))
    flow = direct.make(Structure.from_dict(out["structure"]))
    doc = run_locally(flow, ensure_success=True, log=False, root_dir=tmp_path)[flow.output.uuid][1].output
    assert out["bulk_modulus"] == pytest.approx(doc.derived_properties.k_vrh, abs=0.5)
    assert np.allclose(out["elastic"]["tensor_ieee_gpa"], doc.elastic_tensor.ieee_format, atol=3)


@pytest.mark.slow
def test_the_bulk_modulus_workflow_runs_end_to_end(tmp_path, capsys, monkeypatch):
    """workflows/bulk-modulus.yaml, one round of it on the 4-atom cell: every result has its moduli."""
    import yaml
    from helpers import ROOT

    cfg = yaml.safe_load((ROOT / "workflows" / "bulk-modulus.yaml").read_text())
    cfg["search"]["budget"] = cfg["search"]["batch_size"]  # one round
    cfg["structure"]["n_atoms"] = 4  # the conventional cell: the same flow in a quarter of the time
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(["run", str(write_yaml(tmp_path / "bm.yaml", cfg)), "--quiet"], capsys)
    assert code == 0, err
    assert "Pareto front" in out and "bulk_modulus: GPa" in out
    with CampaignDB(StoreConfig(path=str(tmp_path / "htflow-data"))).connect() as db:
        results = CampaignRepository(db, cfg["name"]).results()
    assert len(results) == cfg["search"]["batch_size"]
    for r in results:
        assert r["status"] == "done"
        assert 20 < r["bulk_modulus"] < 300 and 0 < r["poisson_ratio"] < 0.5 and r["shear_modulus"] > 0
