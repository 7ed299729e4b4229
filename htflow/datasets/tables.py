"""Reading a user's table (CSV, JSON, Excel) into a pandas DataFrame, every failure one line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from htflow.errors import InputError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".txt": "csv", ".json": "json", ".xlsx": "excel", ".xlsm": "excel"}
MAX_BYTES = 2 << 30


def table_format(path: Path) -> str:
    """``csv``, ``tsv``, ``json`` or ``excel`` from the file's suffix."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise InputError(f"{path}: unknown table format {path.suffix!r}; allowed: "
                         f"{', '.join(sorted(FORMATS))}")
    return kind


def read_table(path: Path, sheet: str | None = None) -> pd.DataFrame:
    """The rows of ``path`` as strings (cells are parsed later, row by row, with their row number)."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: is not a regular file; expected a CSV, JSON or Excel table")
    if path.stat().st_size > MAX_BYTES:
        raise InputError(f"{path}: larger than {MAX_BYTES >> 30} GiB; split it")
    kind = table_format(path)
    try:
        if kind in ("csv", "tsv"):
            df = pd.read_csv(path, sep=_separator(path, kind), dtype=str, keep_default_na=False,
                             skipinitialspace=True, encoding="utf-8-sig")
        elif kind == "json":
            df = _read_json(path)
        else:
            df = pd.read_excel(path, sheet_name=sheet or 0, dtype=str, keep_default_na=False)
    except InputError:
        raise
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError, KeyError, ImportError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: cannot read it as {kind} ({first})") from None
    if df.empty:
        raise InputError(f"{path}: no rows")
    df.columns = [str(c).strip() for c in df.columns]
    names = list(df.columns)
    # pandas renames a repeated header "HV" to "HV.1": a column would silently be lost or misread
    mangled = {base for c in names if (base := c.rsplit(".", 1)[0]) != c and base in names
               and c.rsplit(".", 1)[-1].isdigit()}
    dup = sorted({c for c in names if names.count(c) > 1} | mangled)
    if dup:
        raise InputError(f"{path}: column {dup[0]!r} appears twice; rename one")
    return df


def _separator(path: Path, kind: str) -> str:
    """Tab for .tsv; for CSV a comma, or a semicolon when the header has more of those (the
    spreadsheet export of many European locales)."""
    if kind == "tsv":
        return "\t"
    with path.open(encoding="utf-8-sig", errors="replace") as f:
        header = f.readline()
    return ";" if header.count(";") > header.count(",") else ","


def _read_json(path: Path) -> pd.DataFrame:
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict):  # {"data": [...]} or {"rows": [...]}
        lists = [v for v in data.values() if isinstance(v, list)]
        data = lists[0] if len(lists) == 1 else data
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise InputError(f"{path}: expected a list of records (objects), one per sample")
    rows = [{k: "" if v is None else (json.dumps(v) if isinstance(v, dict | list) else str(v))
             for k, v in r.items()} for r in data]
    return pd.DataFrame(rows).fillna("")
