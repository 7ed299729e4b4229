"""docs/python-api.md runs as written: its ``# file:`` blocks become modules beside the session,
its other Python blocks run in order in one namespace (their asserts are the checks)."""

from __future__ import annotations

import re
import sys

import pytest
from helpers import ROOT

import htflow

DOC = ROOT / "docs" / "python-api.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_public_api_names_resolve_and_are_listed():
    for name in htflow.__all__:
        assert getattr(htflow, name) is not None, name
    assert {"load_config", "run_campaign", "results_frame", "open_store", "Campaign", "CalculatorSpec",
            "Generator", "ProposalContext", "Executor", "Status", "ResultDoc"} <= set(htflow.__all__)
    with pytest.raises(AttributeError):
        htflow.not_a_name  # noqa: B018


@pytest.mark.slow
def test_the_python_api_page_runs(tmp_path, monkeypatch, capsys):
    blocks = _blocks()
    assert len(blocks) >= 6
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace: dict = {"__name__": "notebook"}
    ran = 0
    for block in blocks:
        first = block.splitlines()[0]
        if first.startswith("# file: "):
            (tmp_path / first.removeprefix("# file: ").strip()).write_text(block)
            continue
        exec(compile(block, f"{DOC.name} block {ran}", "exec"), namespace)
        ran += 1
    for name in ("my_plugins", "my_calculators", "my_samplers"):
        sys.modules.pop(name, None)
    assert ran >= 5
    out = capsys.readouterr().out
    assert "notebook-demo" in out and "formation_energy_per_atom" in out
