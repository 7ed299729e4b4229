"""Warm start (search.prior): a data set imported into the store trains the surrogate from the
first round, shifted by a learned per-source offset once the campaign shares compositions with it."""

from __future__ import annotations

import pytest
from test_active import pool_campaign, run

from htflow.campaign.replay import pool_values
from htflow.campaign.validation import parse_config
from htflow.cli import main
from htflow.errors import InputError

pytestmark = pytest.mark.slow
OFFSET = 0.05  # the prior's values sit this far above the campaign's (another fidelity)


def import_prior(tmp_path, values: dict[str, float]) -> None:
    lines = ["formula,Ef"] + [f"{key},{value + OFFSET}" for key, value in sorted(values.items())]
    (tmp_path / "prior.csv").write_text("\n".join(lines) + "\n")
    main(["import", "prior.csv", "--campaign", "db", "--property", "Ef=formation_energy_per_atom"])


def test_a_prior_data_set_guides_the_first_round_and_its_offset_is_learned(tmp_path):
    data = pool_campaign(budget=12, batch=4, prior=["db"])
    values = pool_values(parse_config(pool_campaign()), "emt-fcc7")
    import_prior(tmp_path, values)
    camp, doc = run(data)
    rounds = {r["round"]: r for r in doc["rounds"]}
    # round 1 already uses the model: 130 prior compositions, no own result yet, so no offset
    assert rounds[1]["phase"] == "model" and rounds[1]["n_train"] == len(values)
    assert rounds[1]["prior"] == {"db": {"rows": len(values), "shared": 0, "offset": 0.0}}
    # later rounds: the campaign's own results replace the prior's at their compositions and give
    # the offset (every shared composition differs by exactly OFFSET)
    assert rounds[3]["prior"]["db"]["shared"] == 8 and rounds[3]["prior"]["db"]["rows"] == len(values) - 8
    assert rounds[3]["prior"]["db"]["offset"] == pytest.approx(-OFFSET)
    # an accurate prior points the first batch at the optimum
    best = min(values, key=values.get)
    with camp.db:
        first = {c["key"] for c in camp.db.candidates.query({"campaign": camp.name, "round": 1})}
    assert best in first


def test_prior_names_a_data_set_of_the_store(tmp_path):
    with pytest.raises(InputError, match="there is no store at"):
        parse_config(pool_campaign(prior=["db"]))
    import_prior(tmp_path, {"Cu1": 0.0, "Ni1": 0.0})
    with pytest.raises(InputError, match=r"search.prior\[0\]: no imported data set 'dB'.*imported data sets: db"):
        parse_config(pool_campaign(prior=["dB"]))
    with pytest.raises(InputError, match="needs sampler surrogate and one objective"):
        parse_config(pool_campaign(prior=["db"], sampler="random"))


def test_the_warm_start_workflow_runs_end_to_end_from_workflows(tmp_path, capsys):
    import shutil

    from helpers import ROOT

    shutil.copytree(ROOT / "workflows", tmp_path / "workflows")
    main(["import", "workflows/data/fcc-formation-prior.csv", "--campaign", "fcc-prior",
          "--property", "formation_energy_per_atom"])
    assert "60 rows imported into 'fcc-prior'" in capsys.readouterr().out
    main(["run", "-q", "workflows/warm-start.yaml"])
    out = capsys.readouterr().out
    assert "12 computed now; 12 done and 0 failed" in out
    from htflow.schemas.config import StoreConfig
    from htflow.store.db import CampaignDB

    with CampaignDB(StoreConfig()) as db:
        doc = db.campaigns.query_one({"name": "warm-start"})
    first = doc["rounds"][0]
    assert first["phase"] == "model" and first["prior"]["fcc-prior"]["rows"] == 60
    assert first["prior"]["fcc-prior"]["offset"] == 0.0  # nothing of its own yet: the same scale assumed
    for r in doc["rounds"][1:]:  # from round 2 (4 own results) the prior's +0.05 eV/atom is learned,
        used = r["prior"]["fcc-prior"]  # from shared compositions or by interpolating the prior
        assert used["rows"] + used["shared"] == 60
        assert used["offset"] == pytest.approx(-0.05, abs=0.02)


def test_the_sample_hardness_table_imports(tmp_path, capsys):
    from helpers import ROOT

    main(["import", str(ROOT / "workflows/data/hea-hardness.csv"), "--campaign", "hea-hv", "--property",
          "HV=hardness", "--unit", "hardness=HV", "--fidelity", "experiment"])
    out = capsys.readouterr().out
    assert "530 rows imported into 'hea-hv'" in out and "377 compositions, 66 measured more than once" in out
