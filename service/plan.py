"""Plan files of `rsmt-studio batch`: CSV (with a header) or JSON lines, one transition per row.

Columns: source, source_frame, target, target_frame, style, length, seed, output. `source`, `target` (and
`style` when it ends in .bvh) are paths relative to the plan's folder (or absolute); `output` is relative to
`--out` and must stay inside it. `seed` may be empty or "none" for no noise. Optional `foot_lock` and
`head_steady` columns (true/false, yes/no, 1/0; empty or absent: true) keep or free planted feet and the head.
A row that cannot be read becomes a failure with reason `bad_row` naming the column; the other rows still run.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

_TRUTH = {"": True, "true": True, "yes": True, "1": True, "on": True,
          "false": False, "no": False, "0": False, "off": False}
COLUMNS = ("source", "source_frame", "target", "target_frame", "style", "length", "seed", "output")


@dataclass(frozen=True)
class PlanRow:
    """One readable row (paths resolved against the plan's folder; output relative to --out)."""

    index: int  # 0-based row number among data rows
    line: int  # 1-based line in the plan file
    source: str
    source_frame: int
    target: str
    target_frame: int
    style: str  # a bank name, or an absolute path to a style BVH
    length: int
    seed: int | None
    output: str
    foot_lock: bool = True  # the optional column `foot_lock` (true/false, yes/no, 1/0; empty: true)
    head_steady: bool = True  # the optional column `head_steady`, likewise


@dataclass(frozen=True)
class BadRow:
    index: int
    line: int
    output: str
    column: str
    message: str


def read_plan(path: Path) -> list[PlanRow | BadRow]:
    """Every data row of a plan, in order. Raises ValueError (naming the file) when the file itself is unusable."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeError) as exc:
        raise ValueError(f"{path}: cannot read plan ({exc})") from None
    base = path.resolve().parent
    first = text.lstrip()[:1]
    records: list[tuple[int, dict | str]] = []
    if first == "{":
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rec = json.loads(line)
                except ValueError as exc:
                    records.append((n, f"not a JSON object ({exc.args[0]})"))
                    continue
                records.append((n, rec if isinstance(rec, dict) else "not a JSON object"))
    else:
        reader = csv.DictReader(text.splitlines())
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: CSV header lacks {', '.join(missing)} (needs {', '.join(COLUMNS)})")
        for rec in reader:
            records.append((reader.line_num, rec))
    rows: list[PlanRow | BadRow] = []
    seen: dict[str, int] = {}
    for index, (line, rec) in enumerate(records):
        if isinstance(rec, str):
            rows.append(BadRow(index, line, "", "row", rec))
            continue
        row = _row(index, line, rec, base)
        if isinstance(row, PlanRow):
            key = str(PurePosixPath(row.output))
            if key in seen:
                row = BadRow(index, line, row.output, "output", f"same output as line {seen[key]}")
            else:
                seen[key] = line
        rows.append(row)
    return rows


def _row(index: int, line: int, rec: dict, base: Path) -> PlanRow | BadRow:
    output = str(rec.get("output") or "").strip()

    def bad(column: str, message: str) -> BadRow:
        return BadRow(index, line, output, column, message)

    for c in COLUMNS:
        if c != "seed" and (rec.get(c) is None or str(rec.get(c)).strip() == ""):
            return bad(c, "missing")
    ints = {}
    for c in ("source_frame", "target_frame", "length"):
        try:
            ints[c] = int(str(rec[c]).strip())
        except ValueError:
            return bad(c, f"{rec[c]!r} is not an integer")
    seed_raw = rec.get("seed")
    seed: int | None
    if seed_raw is None or str(seed_raw).strip().lower() in ("", "none", "null"):
        seed = None
    else:
        try:
            seed = int(str(seed_raw).strip())
        except ValueError:
            return bad("seed", f"{seed_raw!r} is not an integer")
        if seed < 0:
            return bad("seed", f"{seed} is negative")
    switches = {}
    for c in ("foot_lock", "head_steady"):
        raw = str(rec.get(c) if rec.get(c) is not None else "").strip().lower()
        if raw not in _TRUTH:
            return bad(c, f"{rec.get(c)!r} is not true or false")
        switches[c] = _TRUTH[raw]
    out = PurePosixPath(output.replace("\\", "/"))
    if out.is_absolute() or ".." in out.parts or not out.name.lower().endswith(".bvh"):
        return bad("output", f"{output!r} must be a relative .bvh path inside --out (no '..')")

    def resolve(p: str) -> str:
        q = Path(str(p).strip())
        return str(q if q.is_absolute() else base / q)

    style = str(rec["style"]).strip()
    if style.lower().endswith(".bvh"):
        style = resolve(style)
    return PlanRow(index, line, resolve(rec["source"]), ints["source_frame"], resolve(rec["target"]),
                   ints["target_frame"], style, ints["length"], seed, str(out), **switches)
