"""`compare`: aggregates of several evaluations in one fixed-width table (or JSON)."""

import argparse
import json
import re

import pytest

from ttsframe.errors import UserError
from ttsframe.eval.compare import add_compare_args, cmd_compare, compare_rows, compare_table
from ttsframe.utils.atomic import write_json


def write_metrics(exp_dir, set_name, aggregates):
    write_json(exp_dir / "eval" / set_name / "metrics.json",
               {"set": set_name, "recipe": exp_dir.name, "systems": list(aggregates), "aggregates": aggregates})


@pytest.fixture
def experiments(tmp_path):
    a, b = tmp_path / "exp" / "valle", tmp_path / "exp" / "melle"
    write_metrics(a, "test", {"ground_truth": {"items": 60, "wer": 0.31, "sim_to_prompt": 0.83},
                              "synthesis": {"items": 60, "wer": 1.07, "mcd": 8.1, "rtf": 1.69, "zeta": 3}})
    write_metrics(b, "test", {"synthesis": {"items": 40, "wer": 0.52, "utmos": None, "alpha": 0.5}})
    write_metrics(b, "dev", {"synthesis": {"items": 10, "wer": 0.4}})
    return str(a), str(b)


def parse(table: str) -> tuple[list[str], list[list[str]]]:
    header, _, *rows = table.splitlines()
    return header.split(), [row.split() for row in rows if not row.startswith("lower is better")]


def test_one_row_per_experiment_set_and_system_with_ordered_columns(experiments):
    a, b = experiments
    header, rows = parse(compare_table([a, b]))
    assert header == ["experiment", "set", "system", "wer", "sim_to_prompt", "mcd", "utmos", "rtf", "items",
                      "alpha", "zeta"]
    assert rows == [
        [a, "test", "ground_truth", "0.310", "0.830", "-", "-", "-", "60", "-", "-"],
        [a, "test", "synthesis", "1.070", "-", "8.100", "-", "1.690", "60", "-", "3"],
        [b, "dev", "synthesis", "0.400", "-", "-", "-", "-", "10", "-", "-"],
        [b, "test", "synthesis", "0.520", "-", "-", "-", "-", "40", "0.500", "-"],
    ]


def test_columns_are_aligned_and_directions_explained(experiments):
    lines = compare_table(list(experiments)).splitlines()
    assert len({len(line) for line in lines[:2]}) == 1  # header as wide as its rule
    assert lines[-1] == "lower is better: wer, mcd, rtf; higher is better: sim_to_prompt, utmos"


def test_filters_and_a_metrics_file_given_directly(experiments):
    a, b = experiments
    rows = compare_rows([a, f"{b}/eval/test/metrics.json"], system="synthesis", set_name="test")
    assert [(r["experiment"], r["set"], r["system"], r["wer"]) for r in rows] == [
        (a, "test", "synthesis", 1.07), (b, "test", "synthesis", 0.52)]
    with pytest.raises(UserError, match="--system nope"):
        compare_rows([a], system="nope")


def test_missing_metrics_name_the_path_and_the_stage(tmp_path, experiments):
    empty = tmp_path / "exp" / "untrained"
    empty.mkdir()
    with pytest.raises(UserError, match=f"{re.escape(str(empty))}.*evaluate stage"):
        compare_table([experiments[0], str(empty)])
    with pytest.raises(UserError, match="nowhere.*evaluate stage"):
        compare_table([str(tmp_path / "nowhere")])


def test_command_prints_json_or_a_table(experiments, capsys):
    parser = argparse.ArgumentParser()
    add_compare_args(parser)
    cmd_compare(parser.parse_args([*experiments, "--set", "test", "--json"]))
    rows = json.loads(capsys.readouterr().out)
    assert [(r["system"], r["items"]) for r in rows] == [("ground_truth", 60), ("synthesis", 60), ("synthesis", 40)]
    assert rows[2]["utmos"] is None
    cmd_compare(parser.parse_args([experiments[1], "--system", "synthesis"]))
    assert capsys.readouterr().out.splitlines()[0].split()[:4] == ["experiment", "set", "system", "wer"]


def test_markdown_table_for_papers_and_model_cards(experiments, capsys):
    parser = argparse.ArgumentParser()
    add_compare_args(parser)
    cmd_compare(parser.parse_args([*experiments, "--set", "test", "--markdown"]))
    lines = capsys.readouterr().out.splitlines()
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    assert cells[0] == ["experiment", "set", "system", "wer ↓", "sim_to_prompt ↑", "mcd ↓", "utmos ↑", "rtf ↓",
                        "items", "alpha", "zeta"]
    assert lines[1] == "|---|---|---|" + "|".join(["---:"] * 8) + "|"
    assert [row[2:] for row in cells[2:]] == [
        ["ground_truth", "0.310", "0.830", "-", "-", "-", "60", "-", "-"],
        ["synthesis", "1.070", "-", "8.100", "-", "1.690", "60", "-", "3"],
        ["synthesis", "0.520", "-", "-", "-", "-", "40", "0.500", "-"]]  # utmos null: "-"
    with pytest.raises(SystemExit):  # one output format at a time
        parser.parse_args([experiments[0], "--json", "--markdown"])
