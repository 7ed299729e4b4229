"""Fine-tuning CHGNet on high-fidelity results (EMT standing in for DFT): the held-out error drops,
the checkpoint screens a campaign, and bad input is one line."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT, cli_in_process, run_campaign, write_yaml
from pymatgen.core import Structure

pytest.importorskip("chgnet")

ELEMENTS = ["Al", "Cu", "Ni", "Pd"]  # workflows/finetune.yaml's


def _emt_campaign(name: str, seed: int, budget: int, store: str) -> dict:
    return {"name": name, "space": {"elements": ELEMENTS, "step": 0.125, "max_elements": 3},
            "structure": {"prototype": "fcc", "n_atoms": 8},
            "calculator": {"name": "emt", "fmax": 0.05},
            "objectives": [{"name": "formation_energy_per_atom"}],
            "search": {"sampler": "random", "batch_size": budget, "budget": budget, "seed": seed},
            "store": store}


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    """Step 1 of the bundled example (CHGNet screening, the best half promoted to EMT, the stand-in
    high fidelity), and EMT-relaxed compositions its high-fidelity campaign does not have."""
    root = tmp_path_factory.mktemp("ft")
    shutil.copytree(ROOT / "workflows", root / "workflows")
    code, _, err = cli_in_process(["run", "workflows/finetune.yaml", "--quiet"], cwd=root)
    assert code == 0, err
    store = str(root / "htflow-data")
    other = run_campaign(_emt_campaign("held", seed=7, budget=12, store=str(root / "held-data")))
    from htflow.schemas.config import StoreConfig
    from htflow.store.db import CampaignDB

    db = CampaignDB(StoreConfig(path=store))
    with db:
        trained = list(db.results.query({"campaign": "fcc-ft.emt", "status": "done"}))
        doc = db.campaigns.query_one({"name": "fcc-ft.emt"})
    keys = {r["key"] for r in trained} | {ref["key"] for ref in doc["references"].values()}
    held_out = [r for r in other.results(status="done") if r["key"] not in keys]
    return root, store, keys, held_out


def _structures(results: list[dict]) -> list[Structure]:
    return [Structure.from_dict(r["structure"]) for r in results]


def test_finetuning_lowers_the_error_on_held_out_compositions(workflow):
    root, store, keys, held_out = workflow
    assert len(held_out) >= 5
    code, out, err = cli_in_process(["finetune", "fcc-ft", "--epochs", "10", "--json"], cwd=root)
    assert code == 0, err
    m = json.loads(out)
    folder = Path("htflow-data") / "finetune" / "fcc-ft"
    assert m["checkpoint"] == str(folder / "chgnet-finetuned.pth.tar") and (root / folder / "finetune.json").exists()
    assert m["source"] == "fcc-ft.emt"  # the promoted results, not the screening ones
    assert m["n_train"] + m["n_val"] + m["left_out"] == len(keys) and m["n_val"] >= 1  # the references too
    assert set(m["train_keys"]) | set(m["val_keys"]) <= keys
    assert set(m["train_keys"]).isdisjoint(m["val_keys"])
    v = m["val_mae_ev_per_atom"]
    assert v["shifted"] < v["before"]  # CHGNet's energies sit eV below EMT's: the references shift
    assert v["after"] < v["shifted"]

    # held out: compositions neither trained nor validated on; EMT's energy on EMT's relaxed structure
    from chgnet.model import CHGNet

    from htflow.calculators.finetune import load_checkpoint, mae, predict_energies, refit_references

    structures = _structures(held_out)
    truth = np.array([r["energy_per_atom"] for r in held_out])
    base = CHGNet.load(model_name="0.3.0", use_device="cpu", verbose=False)
    before = mae(predict_energies(base, structures), truth)
    # the fair "before": the shipped model with its element references refitted on the training results
    from htflow.schemas.config import StoreConfig
    from htflow.store.db import CampaignDB

    db = CampaignDB(StoreConfig(path=store))
    with db:
        train = [r for r in db.results.query({"campaign": "fcc-ft.emt"}) if r["key"] in m["train_keys"]]
        refs = db.campaigns.query_one({"name": "fcc-ft.emt"})["references"].values()
        doc = db.campaigns.query_one({"name": "fcc-ft"})
    train += [ref["result"] for ref in refs if ref["key"] in m["train_keys"]]
    y = np.array([r["energy_per_atom"] for r in train])
    refit_references(base, _structures(train), y - predict_energies(base, _structures(train)))
    shifted = mae(predict_energies(base, structures), truth)
    after = mae(predict_energies(load_checkpoint(root / m["checkpoint"]), structures), truth)
    print(f"held-out MAE (eV/atom): before {before:.4f}, shifted {shifted:.4f}, after {after:.4f}")
    assert after < shifted < before, (after, shifted, before)
    assert doc["finetune"][-1]["checkpoint"] == m["checkpoint"]


def test_the_next_campaign_screens_with_the_fine_tuned_checkpoint(workflow):
    root, _, _, _ = workflow
    ckpt = root / "htflow-data" / "finetune" / "fcc-ft" / "chgnet-finetuned.pth.tar"
    if not ckpt.exists():  # run alone
        code, _, err = cli_in_process(["finetune", "fcc-ft", "--epochs", "2"], cwd=root)
        assert code == 0, err
    code, _, err = cli_in_process(["run", "workflows/finetune-screen.yaml", "--quiet"], cwd=root)
    assert code == 0, err
    from htflow.api import results_frame
    from htflow.calculators.finetune import load_checkpoint, predict_energies

    done = results_frame("fcc-ft-screen", store=str(root / "htflow-data"))
    assert len(done) == 24 and set(done["status"]) == {"done"}
    from htflow.schemas.config import StoreConfig
    from htflow.store.db import CampaignDB

    db = CampaignDB(StoreConfig(path=str(root / "htflow-data")))
    with db:
        some = list(db.results.query({"campaign": "fcc-ft-screen"}, limit=4))
    want = predict_energies(load_checkpoint(ckpt), _structures(some))
    assert np.allclose([r["energy_per_atom"] for r in some], want, atol=2e-4)  # the fine-tuned model's


@pytest.mark.parametrize(("argv", "message"), [
    (["finetune", "nope"], "no campaign named 'nope'"),
    (["finetune", "fcc-ft", "--val", "1.5"], "--val: 1.5 is not a fraction in (0, 1)"),
    (["finetune", "fcc-ft", "--base", "9.9"], "--base: CHGNet ships the weights of '0.3.0' and '0.2.0'"),
    (["finetune", "fcc-ft", "--learning-rate", "0"], "--learning-rate: 0 is not in (0, 1]"),
    (["finetune", "fcc-ft", "--out", "workflows/finetune.yaml"], "is a file; give a folder for the checkpoint"),
])
def test_bad_input_is_one_line(workflow, argv, message):
    root, store, _, _ = workflow
    code, _, err = cli_in_process([*argv, "--store", store], cwd=root)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_too_few_results_is_one_line_and_nothing_is_written(tmp_path):
    store = str(tmp_path / "htflow-data")
    cfg = _emt_campaign("tiny", seed=1, budget=1, store=store)
    cfg["space"] = {"elements": ["Cu", "Ni"], "step": 0.125}
    run_campaign(cfg)
    code, _, err = cli_in_process(["finetune", "tiny", "--store", store], cwd=tmp_path)
    # one result (perhaps a pure element, then the same as a reference) and two references
    assert code == 2 and re.search(r"'tiny' has [23] done results with a structure and an energy; fine-tuning "
                                   r"needs at least 5", err), err
    assert not (tmp_path / "htflow-data" / "finetune").exists()


def test_an_unknown_checkpoint_is_refused_before_anything_runs(tmp_path):
    cfg = _emt_campaign("x", seed=1, budget=3, store=str(tmp_path / "d"))
    cfg["calculator"] = {"name": "chgnet", "options": {"model": str(tmp_path / "missing.pth.tar")}}
    write_yaml(tmp_path / "c.yaml", cfg)
    code, _, err = cli_in_process(["run", "c.yaml"], cwd=tmp_path)
    assert code == 2 and "or give the path of a checkpoint file" in err, err
    assert not (tmp_path / "d").exists()


def test_ctrl_c_during_training_says_what_was_kept(workflow, monkeypatch, tmp_path):
    """An interrupted fine-tune leaves a previous checkpoint, metrics and log as they were."""
    import htflow.calculators.finetune as ft

    root, store, _, _ = workflow
    folder = tmp_path / "ft"
    folder.mkdir()
    kept = {name: f"previous {name}".encode() for name in (ft.CHECKPOINT, ft.METRICS, ft.LOG)}
    for name, data in kept.items():
        (folder / name).write_bytes(data)

    def interrupted(*args, **kwargs):
        print("epoch 1 of 30")  # into the new log
        raise KeyboardInterrupt

    monkeypatch.setattr(ft, "_finetune", interrupted)
    code, _, err = cli_in_process(["finetune", "fcc-ft", "--store", store, "--out", str(folder)], cwd=root)
    assert code == 130 and "interrupted: no checkpoint was written" in err and "Traceback" not in err
    assert {name: (folder / name).read_bytes() for name in kept} == kept
    assert "epoch 1 of 30" in (folder / f"{ft.LOG}.partial").read_text()
