"""Jobs and flows for the engine tests (importable by Dask workers and subprocesses)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from jobflow import Flow, Response, job


@job
def add(a, b):
    return a + b


@job
def fail(x):
    raise ValueError(f"bad input {x}")


@job
def replace_with_sum(values):
    """Response(replace=...): a new flow takes this job's place (its output is the sum)."""
    parts = [add(v, 0) for v in values]
    total, chain = parts[0], []
    for part in parts[1:]:
        total = add(total.output, part.output)
        chain.append(total)
    return Response(replace=Flow(parts + chain, output=total.output))


@job
def detour_then(x):
    return Response(output=x, detour=add(x, 100))


@job
def with_addition(x):
    return Response(output=x * 2, addition=add(x, 1000))


@job
def stop_kids(x):
    return Response(output=x, stop_children=True)


@job
def spin(seconds):
    """Busy Python loop: the wall-time limit must interrupt it."""
    end = time.time() + seconds
    n = 0
    while time.time() < end:
        n += 1
    return n


@job
def die_once(marker, value):
    """Kill the worker process the first time (a segfaulting code, an OOM kill)."""
    path = Path(marker)
    if not path.exists():
        path.write_text("died")
        os._exit(1)
    return value


@job
def die_always():
    os._exit(1)


@job
def slow_add(a, b, seconds=0.5):
    time.sleep(seconds)
    return a + b


def semantics_flows() -> list[Flow]:
    """Flows exercising references, replace, detour, addition, stop_children and failures."""
    flows = []
    a = add(1, 2)
    b = add(a.output, 3)
    flows.append(Flow([a, b], output=b.output, name="chain"))
    r = replace_with_sum([1, 2, 3])
    after = add(r.output, 1)
    flows.append(Flow([r, after], output=after.output, name="replace"))
    d = detour_then(5)
    d2 = add(d.output, 1)
    flows.append(Flow([d, d2], output=d2.output, name="detour"))
    w = with_addition(7)
    w2 = add(w.output, 1)
    flows.append(Flow([w, w2], output=w2.output, name="addition"))
    s = stop_kids(1)
    s2 = add(s.output, 1)
    flows.append(Flow([s, s2], output=s.output, name="stop_children"))
    f = fail(3)
    f2 = add(f.output, 1)
    flows.append(Flow([f, f2], output=f2.output, name="failure"))
    return flows


@job
def make_dict(x):
    return {"k": x, "nested": {"v": [x, x + 1]}}


@job
def gather(mapping, items, scale=1, structure=None):
    """Arguments holding references inside dicts, lists and attribute paths."""
    total = mapping["a"] + sum(items) * scale
    return {"total": total, "n_sites": len(structure) if structure is not None else None}


def nested_reference_flow() -> Flow:
    from pymatgen.core import Lattice, Structure

    a = make_dict(2)
    b = add(a.output["k"], 3)
    c = gather({"a": a.output["nested"]["v"][1], "b": "text"}, [b.output, a.output["k"], 4],
               scale=b.output,
               structure=Structure(Lattice.cubic(3), ["Cu"], [[0, 0, 0]]))  # an MSONable: jobflow resolves
    d = gather({"a": b.output}, (c.output["total"], 1))
    return Flow([a, b, c, d], output={"c": c.output, "d": d.output}, name="nested")
