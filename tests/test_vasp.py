"""VASP through atomate2 and custodian, with a fake ``vasp`` that replays recorded outputs.

The fake (tests/fakevasp/fake_vasp.py) is run by custodian as the VASP command, in the folder
atomate2 wrote the inputs to; it checks those inputs against the recording and copies the
recorded outputs in. One recorded run first stops with an EDDRMM error until custodian's
VaspErrorHandler sets ALGO = Normal.
"""

from __future__ import annotations

import gzip
import json
import os
import warnings
from pathlib import Path

import pytest
from fakevasp.campaign import ERROR_RUN, RECORDINGS, vasp_campaign
from fakevasp.potcars import write_fake_potcars
from helpers import write_yaml
from monty.io import zopen
from monty.os.path import zpath

from htflow.campaign.loop import Campaign
from htflow.campaign.validation import parse_config
from htflow.cli import main

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"), pytest.mark.slow]


@pytest.fixture
def potcars(tmp_path, monkeypatch):
    """A folder of fake POTCARs as pymatgen's PMG_VASP_PSP_DIR (and for subprocesses, the env)."""
    from pymatgen.core import SETTINGS

    root = write_fake_potcars(tmp_path / "potcars")
    monkeypatch.setitem(SETTINGS, "PMG_VASP_PSP_DIR", str(root))
    monkeypatch.setenv("PMG_VASP_PSP_DIR", str(root))
    return root


def _recorded_energy(key: str) -> tuple[float, int]:
    from pymatgen.io.vasp import Vasprun

    with gzip.open(RECORDINGS / key / "outputs" / "vasprun.xml.gz", "rt", encoding="latin-1") as fh:
        text = fh.read()
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"htflow-vasprun-{os.getpid()}-{key}.xml"
    tmp.write_text(text, encoding="latin-1")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run = Vasprun(str(tmp), parse_potcar_file=False)
    finally:
        tmp.unlink()
    return run.final_energy, len(run.final_structure)


def test_campaign_runs_end_to_end_with_fake_vasp(potcars, tmp_path):
    """Relax then static for every composition, under custodian: energies are the recorded static
    runs', the EDDRMM error is corrected (ALGO = Normal) and recorded, formation energies and hull
    distances follow from the VASP energies."""
    cfg = vasp_campaign(tmp_path / "runs")
    cfg["store"] = str(tmp_path / "vasp.db")
    camp = Campaign(parse_config(cfg, "test"))
    doc = camp.run()
    done = camp.results(status="done")
    assert doc["state"] == "complete" and len(done) == 5, [r.get("error") for r in camp.results()]

    refs = {}
    for r in done:
        formula = "".join(f"{el}{n}" for el, n in sorted(r["counts"].items()))
        energy, n = _recorded_energy(f"{formula}-static")
        assert r["energy_per_atom"] == pytest.approx(energy / n, abs=1e-6)
        assert r["calculator"]["name"] == "vasp" and r["converged"] is True
        if len(r["counts"]) == 1:
            refs[next(iter(r["counts"]))] = energy / n
    for r in done:
        n = sum(r["counts"].values())
        expected = r["energy_per_atom"] - sum(c / n * refs[el] for el, c in r["counts"].items())
        assert r["formation_energy_per_atom"] == pytest.approx(expected, abs=1e-9)
        assert r["e_above_hull"] is not None and r["e_above_hull"] >= -1e-9

    # one folder per VASP run; the relaxation that hit EDDRMM was corrected once by custodian
    folders = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert sum(name.split("-")[1] == "relax" for name in folders) >= 5
    assert sum(name.split("-")[1] == "static" for name in folders) >= 5
    error_folder = next(p for p in (tmp_path / "runs").iterdir() if p.name.startswith("CuNi-relax"))
    with zopen(zpath(str(error_folder / "custodian.json")), "rt") as fh:
        log = json.load(fh)
    corrections = [c for run in log for c in run["corrections"]]
    assert [c["errors"] for c in corrections] == [["eddrmm"]]
    assert corrections[0]["handler"]["@class"] == "VaspErrorHandler"
    assert {"dict": "INCAR", "action": {"_set": {"ALGO": "Normal"}}} in corrections[0]["actions"]
    assert ERROR_RUN.startswith("Cu2Ni2")


def test_inputs_that_differ_from_the_recording_are_caught(potcars, tmp_path):
    """A changed INCAR (ENCUT) makes the fake refuse, naming the difference in the run folder's
    std_err.txt; custodian's validator fails the run, and a failed reference stops the campaign
    with one line."""
    from htflow.errors import CampaignError

    cfg = vasp_campaign(tmp_path / "runs")
    cfg["calculator"]["options"]["incar"] = {"ENCUT": 600}
    cfg["store"] = str(tmp_path / "vasp.db")
    camp = Campaign(parse_config(cfg, "test"))
    with pytest.raises(CampaignError, match=r"reference calculation for Cu failed .*Validation failed"):
        camp.run()
    folder = next((tmp_path / "runs").glob("Cu-relax-*"))
    assert "INCAR ENCUT: recorded 680.0, got 600.0" in (folder / "std_err.txt").read_text()


def _exit(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code


def _cli_config(tmp_path, **options) -> Path:
    cfg = vasp_campaign(tmp_path / "runs")
    cfg["calculator"]["options"].update(options)
    cfg["store"] = str(tmp_path / "out.db")
    return write_yaml(tmp_path / "campaign.yaml", cfg)


@pytest.mark.parametrize(("options", "words"), [
    ({"command": "vasp_std_not_installed"}, ["calculator.options.command", "'vasp_std_not_installed'", "not on PATH",
                                             "ATOMATE2_VASP_CMD"]),
    ({"command": "mpirun -np 4 vasp_std_not_installed"}, ["calculator.options.command", "not on PATH"]),
    ({"potcar_functional": "PBE_99"}, ["calculator.options.potcar_functional", "'PBE_99'", "PBE_54"]),
    ({"encut": 500}, ["calculator.options", "unknown option(s) encut", "allowed:", "incar"]),
    ({"incar": "ENCUT=500"}, ["calculator.options.incar", "valid dictionary", "ENCUT=500"]),
    ({"max_errors": 0}, ["calculator.options.max_errors", "greater than or equal to 1"]),
    ({"poll_seconds": -1}, ["calculator.options.poll_seconds", "greater than 0"]),
])
def test_bad_vasp_settings_are_refused_before_anything_is_written(potcars, tmp_path, capsys, options, words):
    path = _cli_config(tmp_path, **options)
    assert _exit(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words), err
    assert "Traceback" not in err and not (tmp_path / "out.db").exists() and not (tmp_path / "runs").exists()


def test_missing_potcars_are_refused_before_any_job(potcars, tmp_path, capsys, monkeypatch):
    from pymatgen.core import SETTINGS

    path = _cli_config(tmp_path)
    (potcars / "POT_GGA_PAW_PBE_54" / "POTCAR.Ni").unlink()
    assert _exit(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "no PBE_54 POTCAR for Ni (Ni:" in err and "POTCAR.Ni" in err, err

    monkeypatch.delitem(SETTINGS, "PMG_VASP_PSP_DIR")
    assert _exit(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "PMG_VASP_PSP_DIR is not set" in err, err
    assert not (tmp_path / "out.db").exists() and not (tmp_path / "runs").exists()


def test_vasp_on_threads_sharing_a_process_is_refused(potcars, tmp_path, capsys):
    cfg = vasp_campaign(tmp_path / "runs")
    cfg["executor"] = {"type": "dask", "workers": 1, "threads_per_worker": 2}
    cfg["store"] = str(tmp_path / "out.db")
    assert _exit(["run", str(write_yaml(tmp_path / "c.yaml", cfg))]) == 2
    assert "executor.threads_per_worker" in capsys.readouterr().err


def test_fake_vasp_campaign_on_a_dask_local_cluster_equals_the_recordings(potcars, tmp_path):
    """The same campaign on two Dask worker processes: each run in its own folder, same energies."""
    cfg = vasp_campaign(tmp_path / "runs")
    cfg["executor"] = {"type": "dask", "workers": 2}
    cfg["store"] = str(tmp_path / "vasp.db")
    camp = Campaign(parse_config(cfg, "test"))
    doc = camp.run()
    done = camp.results(status="done")
    assert doc["state"] == "complete" and len(done) == 5, [r.get("error") for r in camp.results()]
    for r in done:
        formula = "".join(f"{el}{n}" for el, n in sorted(r["counts"].items()))
        energy, n = _recorded_energy(f"{formula}-static")
        assert r["energy_per_atom"] == pytest.approx(energy / n, abs=1e-6)


def test_emt_screen_promoted_to_vasp(potcars, tmp_path):
    """Multi-fidelity up to DFT: EMT single points screen the Cu-Ni grid, the best half of the
    alloys is promoted to (fake) VASP, whose results are stored in their own campaign."""
    vasp = vasp_campaign(tmp_path / "runs")["calculator"]
    cfg = {"name": "mf", "space": {"elements": ["Cu", "Ni"], "step": 0.25},
           "structure": {"prototype": "fcc", "n_atoms": 4},
           "calculator": {"name": "emt", "relax": False},
           "promote": {"calculator": vasp, "best": 0.5},
           "search": {"sampler": "grid", "batch_size": 5, "budget": 5},
           "store": str(tmp_path / "mf.db")}
    camp = Campaign(parse_config(cfg, "test"))
    doc = camp.run()
    assert doc["state"] == "complete" and doc["promoted_to"] == "mf.vasp"
    screened = sorted((r for r in camp.results(status="done") if len(r["counts"]) > 1),
                      key=lambda r: r["formation_energy_per_atom"])
    promoted = camp.promoted.results(status="done")
    assert {r["key"] for r in promoted} == {r["key"] for r in screened[:2]}
    for r in promoted:
        formula = "".join(f"{el}{n}" for el, n in sorted(r["counts"].items()))
        energy, n = _recorded_energy(f"{formula}-static")
        assert r["energy_per_atom"] == pytest.approx(energy / n, abs=1e-6)
        assert r["calculator"]["name"] == "vasp"
