"""Re-record the fake-VASP runs: ``python tests/fakevasp/record.py`` from the repository root.

Runs the test campaign with the fake ``vasp`` in record mode (EMT energies written as VASP
output, see vaspout.py), then marks one run as stopping once with an EDDRMM error.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from campaign import ERROR, ERROR_RUN, RECORDINGS, vasp_campaign
from potcars import write_fake_potcars


def main() -> None:
    import os

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PMG_VASP_PSP_DIR"] = str(write_fake_potcars(Path(tmp) / "potcars"))
        from pymatgen.core import SETTINGS

        SETTINGS["PMG_VASP_PSP_DIR"] = os.environ["PMG_VASP_PSP_DIR"]
        from htflow.campaign.loop import Campaign
        from htflow.campaign.validation import parse_config

        shutil.rmtree(RECORDINGS, ignore_errors=True)
        RECORDINGS.mkdir(parents=True)
        cfg = vasp_campaign(Path(tmp) / "runs", record=True)
        cfg["store"] = f"{tmp}/record.db"
        doc = Campaign(parse_config(cfg, "record")).run()
        print(doc["state"], sorted(p.name for p in RECORDINGS.iterdir()))
    (RECORDINGS / ERROR_RUN / "error.json").write_text(json.dumps(ERROR, indent=1) + "\n")


if __name__ == "__main__":
    main()
