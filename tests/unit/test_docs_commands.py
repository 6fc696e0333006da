"""Every command the docs show (README.md, docs/**/*.md) parses, without running anything.

Collected: lines of fenced code blocks (not ```text blocks, which hold script samples and
usage patterns) and inline `code` spans that run `make`, `python -m ttsframe`, or a script
under benchmarks/. Checked with the project's own parsers: the Makefile's targets, the CLI's
argparse (`ttsframe.__main__.parse_args`), the config resolution of `python -m ttsframe config`
(`load_run_config`: recipe, group choices, dotted keys, value types), the stage numbers of the
recipe, and the model family of its train stages. Paths in values are not checked. Other
commands (pip, hf, sbatch, ...) are skipped. Inline settings (`model=melle_cpu`,
`trainer.joined_rows=0.6`, `eval.asr.backend=a|b`, `data.root`) must name a choice, or a key of
some choice, of their group.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import re
import shlex
from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf

from ttsframe.__main__ import build_parser, parse_args
from ttsframe.config import GROUPS, load_group, load_run_config
from ttsframe.config.loading import group_choices
from ttsframe.errors import UserError
from ttsframe.models.registry import all_tasks

REPO = Path(__file__).resolve().parents[2]
DOC_FILES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
OURS = re.compile(r"^(make(\s|$)|(\S*/)?python3?\s+(-m\s+ttsframe(\s|$)|benchmarks/)|bash\s+benchmarks/)")
FENCE = re.compile(r"^\s*```(\w*)")
MAKE_VARIABLES = ("recipe", "stage", "stop_stage", "force", "PYTHON")  # the Makefile's RESERVED
# group=x, group.key[=x]; not a file name (`codec.safetensors`, `vocoder.json`)
SETTING = re.compile(rf"^({'|'.join(GROUPS)})(?=[.=])(?!\.(json|safetensors|yaml)$)((?:\.\w+)*)(?:=(\S*))?$")


class WrongCommand(AssertionError):
    """A doc command that would fail before doing any work."""


def collect(text: str, pattern: re.Pattern = OURS) -> list[tuple[int, str]]:
    """(line number, command) of every command of ours (or other `pattern` match) in a Markdown text."""
    found, prose, block, fence = [], [], [], None
    for number, line in enumerate(text.splitlines(), 1):
        opening = FENCE.match(line)
        if fence is None and opening:
            fence = opening.group(1)
        elif fence is not None and line.strip() == "```":
            fence = None
        elif fence is None:
            prose.append((number, line))
        elif fence != "text":
            block.append((number, line))
    if pattern is not SETTING:  # settings are checked where prose names them; code lines are commands
        found += joined_lines(block)
    found += inline_spans(prose)
    return [(number, command) for number, command in sorted(found) if pattern.match(command)]


def joined_lines(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Code lines with their backslash continuations joined, a `$ ` prompt removed."""
    out, start, parts = [], None, []
    for number, line in lines:
        start = number if start is None else start
        parts.append(line.rstrip().removesuffix("\\"))
        if not line.rstrip().endswith("\\"):
            out.append((start, " ".join(parts).strip().removeprefix("$ ")))
            start, parts = None, []
    return out


def inline_spans(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """`code` spans of the prose (a span may wrap onto the next line), whitespace collapsed."""
    text = "\n".join(line for _, line in lines)
    return [(lines[text.count("\n", 0, match.start())][0], " ".join(match.group(1).split()))
            for match in re.finditer(r"`([^`]+)`", text)]


def check(command: str) -> None:
    """Raises WrongCommand, saying why, where `command` would fail before doing any work."""
    try:
        tokens = shlex.split(command, comments=True)
    except ValueError as e:
        raise WrongCommand(f"not a shell command: {e}") from None
    if tokens[0] == "make":
        return check_make(tokens[1:])
    if tokens[0] == "bash":
        return check_script(tokens[1])
    if tokens[1:3] == ["-m", "ttsframe"]:
        return check_cli(tokens[3:])
    check_script(tokens[1])
    if tokens[1] == "benchmarks/memorize.py":
        check_memorize(tokens[2:])


def check_make(args: list[str]) -> None:
    """`make [target] recipe=R stage=N ... key=value`, as the Makefile turns it into a CLI call."""
    rules = set(re.findall(r"^([A-Za-z][\w-]*):", (REPO / "Makefile").read_text(), re.M))
    targets = [a for a in args if "=" not in a]
    if set(targets) - rules:
        raise WrongCommand(f"make: no rule for {sorted(set(targets) - rules)}; targets: {sorted(rules)}")
    variables = dict(a.split("=", 1) for a in args if "=" in a)
    overrides = [f"{k}={v}" for k, v in variables.items() if k not in MAKE_VARIABLES]
    if targets not in ([], ["run"]):
        return
    if "recipe" not in variables:
        if overrides:
            raise WrongCommand(f"make: overrides {overrides} without recipe= (make alone prints the help)")
        return
    argv = ["run", variables["recipe"], "--stage", variables.get("stage", "0")]
    if "stop_stage" in variables:
        argv += ["--stop-stage", variables["stop_stage"]]
    check_cli(argv + (["--force"] if variables.get("force") else []) + overrides)


def check_cli(argv: list[str]) -> None:
    """`python -m ttsframe ...`: the arguments parse; a recipe command's config resolves."""
    errors = io.StringIO()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(errors):
            args = parse_args(parser(), argv)
    except SystemExit as e:
        if e.code:
            raise WrongCommand(errors.getvalue().strip().splitlines()[-1]) from None
        return  # --help
    if hasattr(args, "recipe"):
        check_run(args.recipe, args.overrides, getattr(args, "stage", 0), getattr(args, "stop_stage", None))


@functools.cache
def parser():
    return build_parser()


@functools.cache
def resolved(recipe: str, overrides: tuple[str, ...]):
    """The config `python -m ttsframe config recipe overrides...` prints, or the reason it fails."""
    try:
        return load_run_config(recipe, list(overrides))
    except UserError as e:
        return e


def check_run(recipe: str, overrides: list[str], start: int, stop: int | None) -> None:
    cfg = resolved(recipe, tuple(overrides))
    if isinstance(cfg, UserError):
        raise WrongCommand(str(cfg))
    last = len(cfg.stages) - 1
    if not 0 <= start <= last or (stop is not None and not start <= stop <= last):
        raise WrongCommand(f"stages {start}..{stop}: recipe {recipe} has stages 0..{last}")
    tasks = all_tasks()
    for stage in cfg.stages:
        if stage.kind == "train" and tasks[stage.options.task].name != cfg.model.family:
            raise WrongCommand(f"stage {stage.name} trains a {tasks[stage.options.task].name} model, "
                               f"but model={cfg.choices.model} is {cfg.model.family}")


def check_script(path: str) -> None:
    if not (REPO / path).is_file():
        raise WrongCommand(f"{path}: no such script")


@functools.cache
def memorize_script():
    spec = importlib.util.spec_from_file_location("memorize", REPO / "benchmarks" / "memorize.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_memorize(argv: list[str]) -> None:
    """benchmarks/memorize.py: its own parser, and the recipe run it makes (a generic manifest)."""
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            args = memorize_script().parse_args(argv)
    except SystemExit:
        raise WrongCommand(f"memorize.py: bad arguments {argv}") from None
    if args.voice is not None:
        from data_prep.builtin import TEST_VOICES, TRAIN_VOICES

        if args.voice not in {v.name for v in TRAIN_VOICES + TEST_VOICES}:
            raise WrongCommand(f"memorize.py --voice {args.voice}: not a built-in voice")
    check_run(args.recipe, ["data=generic", "data.manifest=memorized.jsonl", f"trainer.max_steps={args.steps}",
                            *args.overrides], 0, None)


@functools.cache
def group_file(group: str, choice: str) -> DictConfig:
    return load_group(group, choice)


def check_setting(setting: str) -> None:
    """`group=a|b` names choices of the group; `group.key.sub=...` a key of one of its choices."""
    group, _, path, value = SETTING.match(setting).groups()
    if not path:
        wrong = [c for c in value.split("|") if c and c not in group_choices(group)]
        if wrong:
            raise WrongCommand(f"no {group}={'|'.join(wrong)}; choices: {', '.join(group_choices(group))}")
        return
    if not any(has_key(group_file(group, choice), path.split(".")[1:]) for choice in group_choices(group)):
        raise WrongCommand(f"no choice of `{group}` has the key `{group}{path}`")


def has_key(node, keys: list[str]) -> bool:
    for key in keys:
        if OmegaConf.get_type(node) is dict:  # a free-form mapping field (model.loss, trainer.stage_max_steps)
            return True
        if not isinstance(node, DictConfig) or key not in node:
            return False
        node = node[key]
    return True


COMMANDS = [(path, number, command) for path in DOC_FILES
            for number, command in collect(path.read_text(encoding="utf-8"))]
SETTINGS = [(path, number, setting) for path in DOC_FILES
            for number, setting in collect(path.read_text(encoding="utf-8"), SETTING)]
CHECKS = [(*item, check) for item in COMMANDS] + [(*item, check_setting) for item in SETTINGS]


@pytest.mark.parametrize("path,number,text,checker", CHECKS,
                         ids=[f"{p.relative_to(REPO)}:{n}:{c.__name__}" for p, n, _, c in CHECKS])
def test_doc_command_parses(path: Path, number: int, text: str, checker):
    try:
        checker(text)
    except WrongCommand as e:
        pytest.fail(f"{path.relative_to(REPO)}:{number}: `{text}`: {e}", pytrace=False)


def test_docs_are_collected():
    assert {p.relative_to(REPO).as_posix() for p in DOC_FILES} >= {"README.md", "docs/recipes/valle.md",
                                                                   "docs/troubleshooting.md"}
    assert len(COMMANDS) > 50
    # CI runs the README's setup and test commands: they come first, as they are
    first = [shlex.split(c, comments=True) for _, c in collect((REPO / "README.md").read_text())][:2]
    assert first == [["make", "setup"], ["make", "test"]]


@pytest.mark.parametrize("command", [
    "make recipe=nope",
    "make nonsense",
    "make recipe=valle stage=9",
    "make recipe=valle stage=3 stop_stage=2",
    "make recipe=valle model=valle_huge",
    "make recipe=valle trainer.max_stepz=10",
    "make recipe=valle trainer.max_steps=many",
    "make recipe=valle tokenizer.steps=10",
    "make recipe=melle model=valle_tiny",
    "make data=ljspeech",
    "python -m ttsframe run valle --stages 2",
    "python -m ttsframe config valle data.root",
    "python -m ttsframe synthesize --release r --text t",
    "python benchmarks/nope.py",
    "python benchmarks/memorize.py valle --voice nobody",
    "python benchmarks/memorize.py valle -- model.d_modle=8",
    "python -m ttsframe run valle model.d_model='8",
])
def test_wrong_commands_fail(command: str):
    with pytest.raises(WrongCommand):
        check(command)


@pytest.mark.parametrize("setting", ["model=melle_huge", "trainer=cpu|gpu9", "model.stop_hidden",
                                     "codec.bandwith=6.0", "eval.asr.modle=x"])
def test_wrong_settings_fail(setting: str):
    with pytest.raises(WrongCommand):
        check_setting(setting)


def test_collect_reads_fences_spans_and_continuations():
    text = ("Run `make recipe=valle stage=2`, or\n`python -m ttsframe --help`.\n\n```bash\npip install x\n"
            "make recipe=valle \\\n    trainer=gpu8   # a comment\n```\n\n```text\nmake recipe=R\n```\n")
    assert collect(text) == [(1, "make recipe=valle stage=2"), (2, "python -m ttsframe --help"),
                             (6, "make recipe=valle      trainer=gpu8   # a comment")]


def heading_anchors(text: str) -> set[str]:
    """GitHub's anchors of the Markdown headings: lower case, punctuation dropped, spaces to -."""
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in re.findall(r"^#+ (.*)$", text, re.M)}


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_doc_links_resolve(path: Path):
    """Relative links name a file that exists, and a heading of it where they give an anchor."""
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text(encoding="utf-8")):
        file, _, anchor = target.partition("#")
        if re.match(r"\w+://", target):
            continue
        linked = (path.parent / file).resolve() if file else path
        if not linked.exists() or (anchor and anchor not in heading_anchors(linked.read_text(encoding="utf-8"))):
            broken.append(target)
    assert not broken, f"{path.relative_to(REPO)}: broken links {broken}"
