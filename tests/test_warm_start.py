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
