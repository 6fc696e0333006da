"""`python -m ttsframe compare exp/a exp/b`: the aggregates of several evaluations side by side.

One row per (experiment, set, system), one column per aggregate metric found in any of them
(the report's order: wer, cer, ..., rtf, items, then the others alphabetically); "-" where an
evaluation lacks a metric.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ttsframe.errors import UserError
from ttsframe.eval.report import METRICS, fmt, ordered

KEYS = ("experiment", "set", "system")


def find_metrics(path: str) -> list[Path]:
    """The metrics.json files of one argument: an experiment dir, an eval/<set> dir or the file."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{path}: not found; give an experiment dir (exp/<recipe>) whose evaluate stage "
                        "has run, or a metrics.json file")
    if p.is_file():
        return [p]
    found = sorted(p.glob("eval/*/metrics.json")) or ([p / "metrics.json"] if (p / "metrics.json").is_file() else [])
    if not found:
        raise UserError(f"{path}: no eval/<set>/metrics.json found; run the evaluate stage of that "
                        "experiment first (or give a metrics.json file)")
    return found


def experiment_name(path: str, metrics_file: Path) -> str:
    """The argument for a folder; for a file, its experiment dir when it lies in <exp>/eval/<set>/."""
    if Path(path).is_dir():
        return path
    return str(metrics_file.parent.parent.parent) if metrics_file.parent.parent.name == "eval" else path


def compare_rows(paths: list[str], system: str | None = None, set_name: str | None = None) -> list[dict]:
    """One dict per (experiment, set, system): those three keys plus the system's aggregates."""
    rows = []
    for path in paths:
        for metrics_file in find_metrics(path):
            try:
                metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as e:
                raise UserError(f"{metrics_file}: unreadable ({e}); run the evaluate stage again") from None
            set_of_file = metrics.get("set") or metrics_file.parent.name
            if set_name is not None and set_of_file != set_name:
                continue
            for name, aggregates in (metrics.get("aggregates") or {}).items():
                if system is None or name == system:
                    rows.append({"experiment": experiment_name(path, metrics_file), "set": set_of_file,
                                 "system": name, **(aggregates or {})})
    if not rows:
        raise UserError(f"no evaluation in {', '.join(paths)} matches "
                        f"--system {system or 'any'} --set {set_name or 'any'}")
    return rows


def format_table(rows: list[dict]) -> str:
    """Fixed-width text: text columns left-aligned, numbers right-aligned, "-" for missing."""
    columns = ordered({key for row in rows for key in row} - set(KEYS))
    cells = [[*KEYS, *columns]] + [[str(row[k]) for k in KEYS] + [fmt(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(cell.ljust(w) if i < len(KEYS) else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(line, widths))).rstrip() for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lower = [c for c in columns if METRICS.get(c, ("",))[0] == "↓"]
    higher = [c for c in columns if METRICS.get(c, ("",))[0] == "↑"]
    if lower or higher:
        lines.append(f"lower is better: {', '.join(lower) or '-'}; higher is better: {', '.join(higher) or '-'}")
    return "\n".join(lines)


def format_markdown(rows: list[dict]) -> str:
    """A GitHub-flavoured Markdown table of the rows (metric columns right-aligned, arrows in the
    header: lower or higher is better), for papers and model cards."""
    columns = ordered({key for row in rows for key in row} - set(KEYS))

    def head(column: str) -> str:
        arrow = METRICS.get(column, ("",))[0]
        return f"{column} {arrow}".strip()

    lines = ["| " + " | ".join([*KEYS, *map(head, columns)]) + " |",
             "|" + "|".join(["---"] * len(KEYS) + ["---:"] * len(columns)) + "|"]
    for row in rows:
        cells = [str(row[k]).replace("|", "\\|") for k in KEYS] + [fmt(row.get(c)) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def compare_table(paths: list[str], system: str | None = None, set_name: str | None = None) -> str:
    """The aggregates of the evaluations under `paths` as a fixed-width text table."""
    return format_table(compare_rows(paths, system, set_name))


def add_compare_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", help="experiment dirs (exp/<recipe>) or metrics.json files")
    p.add_argument("--system", help="only this system (ground_truth, resynthesis, synthesis)")
    p.add_argument("--set", dest="set_name", help="only this evaluation set (e.g. test)")
    output = p.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    output.add_argument("--markdown", action="store_true", help="print a Markdown table (papers, model cards)")


def cmd_compare(args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps(compare_rows(args.paths, args.system, args.set_name), indent=2, ensure_ascii=False))
    elif args.markdown:
        print(format_markdown(compare_rows(args.paths, args.system, args.set_name)))
    else:
        print(compare_table(args.paths, args.system, args.set_name))
