"""``htflow finetune``: CHGNet fine-tuned on a campaign's high-fidelity results, for the next screening."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from htflow.cli.app import StoreOpt, app, console
from htflow.cli.common import campaign_doc, open_db
from htflow.errors import InputError
from htflow.schemas.documents import Status
from htflow.store.db import CampaignDB
from htflow.store.repository import CampaignRepository, now

MIN_RESULTS = 5


def default_folder(db: CampaignDB, name: str) -> Path:
    """``finetune/NAME`` in the embedded store's folder, else ``htflow-finetune/NAME`` here."""
    if db.cfg.backend == "embedded":
        return Path(db.cfg.path) / "finetune" / name
    return Path("htflow-finetune") / name


def source_campaign(doc: dict) -> str:
    """The campaign whose results train the model: the promoted (high-fidelity) one where there is one."""
    return doc.get("promoted_to") or doc["name"]


def reference_results(doc: dict) -> list[dict]:
    """The pure elements the campaign computed as its references, as results (they train too)."""
    out = []
    for el, ref in sorted((doc.get("references") or {}).items()):
        r = ref.get("result") or {}
        out.append({"key": ref.get("key") or el, "status": "done", **{
            k: r.get(k) for k in ("energy_per_atom", "structure", "converged")}})
    return out


def errors_table(m: dict) -> Table:
    table = Table(caption=f"MAE of the energy per atom on the {m['n_val']} validation structures "
                          f"(trained on {m['n_train']})")
    for col in ("model", "MAE (meV/atom)"):
        table.add_column(col, justify="left" if col == "model" else "right")
    v = m["val_mae_ev_per_atom"]
    table.add_row(f"CHGNet {m['base']} as shipped", f"{1000 * v['before']:.1f}")
    table.add_row("  its element references refitted", f"{1000 * v['shifted']:.1f}")
    tuned = f"  fine-tuned (epoch {m['best_epoch']} of {m['settings']['epochs']})"
    table.add_row(tuned, f"{1000 * v['after']:.1f}")
    return table


def _check(learning_rate: float, val: float, base: str) -> None:
    if importlib.util.find_spec("chgnet") is None:
        raise InputError("htflow finetune needs the chgnet package, which is not installed: "
                         "pip install 'htflow[mlip]'")
    if base not in ("0.3.0", "0.2.0"):
        raise InputError(f"--base: CHGNet ships the weights of '0.3.0' and '0.2.0'; got {base!r}")
    if not 0 < learning_rate <= 1:
        raise InputError(f"--learning-rate: {learning_rate:g} is not in (0, 1]")
    if not 0 < val < 1:
        raise InputError(f"--val: {val:g} is not a fraction in (0, 1)")


def record(db: CampaignDB, name: str, metrics: dict) -> None:
    """The fine-tune in the campaign's document (``finetune``: one entry per run)."""
    with db:
        doc = campaign_doc(db, name)
        doc.setdefault("finetune", []).append(
            {"at": now(), **{k: metrics[k] for k in (
                "source", "checkpoint", "n_train", "n_val", "val_mae_ev_per_atom", "seconds")}})
        CampaignRepository(db, name).save_doc(doc)


def _train(finetune_chgnet: Any, samples: list, folder: Path, settings: Any, label: str) -> dict:
    """The fine-tune under a spinner on stderr; Ctrl-C says what was kept (exit status 130)."""
    waiting = Console(file=sys.stderr)  # bound now: CHGNet's own printing goes to the log meanwhile
    try:
        with waiting.status(label):
            return finetune_chgnet(samples, folder, settings)
    except KeyboardInterrupt:
        print("\ninterrupted: no checkpoint was written (a previous one is as it was); run the same "
              "command to start the fine-tune again", file=sys.stderr)
        sys.exit(130)


@app.command()
def finetune(
    name: Annotated[str, typer.Argument(help="Campaign name: its promoted (high-fidelity) results train "
                                             "the model, else its own results.")],
    store: StoreOpt = None,
    epochs: Annotated[int, typer.Option(min=1, max=10_000, help="Training epochs.")] = 30,
    learning_rate: Annotated[float, typer.Option(help="Adam's learning rate.")] = 3e-3,
    val: Annotated[float, typer.Option(help="Share of the results kept out to validate.")] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the split and of the training.")] = 0,
    base: Annotated[str, typer.Option(help="Pretrained CHGNet to start from: 0.3.0 or 0.2.0.")] = "0.3.0",
    out: Annotated[Path | None, typer.Option(help="Folder for the checkpoint (default: finetune/NAME "
                                                  "in the store's folder).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The metrics as JSON.")] = False,
) -> None:
    """Fine-tune CHGNet on a campaign's high-fidelity results, for the next campaign's screening.

    The checkpoint goes to OUT/chgnet-finetuned.pth.tar with finetune.json (errors before and after,
    on results kept out); use it as calculator.options.model of a chgnet campaign.
    """
    _check(learning_rate, val, base)  # --epochs: typer's min=1
    db = open_db(store)
    with db:
        doc = campaign_doc(db, name)
        source = source_campaign(doc)
        results = CampaignRepository(db, source).results(
            Status.DONE, ["key", "status", "energy_per_atom", "structure", "converged"])
        have = {r["key"] for r in results}
        results += [r for r in reference_results(CampaignRepository(db, source).doc() or {})
                    if r["key"] not in have]
    from htflow.calculators.finetune import (  # lazy: pymatgen, and torch with CHGNet when it runs
        FinetuneSettings,
        finetune_chgnet,
        samples_from_results,
    )

    samples, left_out = samples_from_results(results)
    if len(samples) < MIN_RESULTS:
        raise InputError(f"campaign {source!r} has {len(samples)} done results with a structure and an "
                         f"energy; fine-tuning needs at least {MIN_RESULTS}")
    folder = out or default_folder(db, name)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"--out: {str(folder)!r} is a file; give a folder for the checkpoint")
    settings = FinetuneSettings(epochs=epochs, learning_rate=learning_rate, val_fraction=val, seed=seed,
                                base=base)
    con = console()
    metrics = _train(finetune_chgnet, samples, folder, settings,
                     f"fine-tuning CHGNet {base} on {len(samples)} results of {source!r} "
                     f"({epochs} epochs; log in {folder / 'train.log'})")
    metrics.update(source=source, left_out=left_out)
    record(db, name, metrics)
    if as_json:
        print(json.dumps({k: v for k, v in metrics.items() if k != "history"}))
        return
    con.print(errors_table(metrics))
    con.print(f"{len(samples)} results of campaign {source!r}"
              + (f" ({left_out} left out: unconverged or without a structure)" if left_out else "")
              + f"; {metrics['seconds']:.0f} s", highlight=False)
    con.print(f"checkpoint: {metrics['checkpoint']}\nuse it for screening:  calculator: "
              f"{{name: chgnet, options: {{model: {metrics['checkpoint']}}}}}", highlight=False)
