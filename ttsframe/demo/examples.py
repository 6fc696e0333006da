"""Example requests for the page, from the test prompts of a release's own experiment.

A release folder holds the model only (config.yaml, README.md, weights, vocab.json and the
codec / mel / vocoder JSON; see `ttsframe.release`): no prompts. The synthesize stage of the
same experiment (`<exp>/release` beside `<exp>/synth/<split>/items.jsonl`) lists the test
requests it said, each with its prompt audio and transcript; those whose prompt file still exists
become the examples. A release copied elsewhere, or one whose experiment never ran that stage,
has none, and the page shows no examples.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

SYNTH_DIR = "synth"  # ttsframe.pipeline.synthesize.OUTPUT_DIR (not imported: it pulls in OmegaConf)
MAX_EXAMPLES = 4


def release_examples(release_dir: str | Path, limit: int = MAX_EXAMPLES) -> list[tuple[str, Path, str]]:
    """Up to `limit` (text, prompt audio path, prompt transcript), one prompt each, in the order
    of the synthesize stage's items.jsonl files (split names sorted)."""
    out, seen = [], set()
    for items in sorted((Path(release_dir).parent / SYNTH_DIR).glob("*/items.jsonl")):
        for line in items.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
                text, prompt, transcript = row["text"], Path(row["prompt_audio"]), row["prompt_text"]
            except (ValueError, KeyError, TypeError):
                continue
            if prompt in seen or not prompt.is_file() or not str(text).strip() or not str(transcript).strip():
                continue
            seen.add(prompt)
            out.append((str(text), prompt, str(transcript)))
            if len(out) >= limit:
                return out
    return out


def page_examples(release_dirs: list[Path], limit: int = MAX_EXAMPLES) -> list[list[str]]:
    """[text, prompt path, transcript] rows for gr.Examples from all releases (prompts copied to a
    temporary folder: Gradio serves files from there, not from a corpus cache)."""
    rows, folder = [], None
    for release_dir in release_dirs:
        for text, prompt, transcript in release_examples(release_dir, limit - len(rows)):
            folder = folder or Path(tempfile.mkdtemp(prefix="ttsframe-demo-examples-"))
            copy = folder / f"{len(rows):02d}_{prompt.name}"
            shutil.copyfile(prompt, copy)
            rows.append([text, str(copy), transcript])
        if len(rows) >= limit:
            break
    return rows
