"""Command line: `python -m ttsframe <command> ...` (see COMMANDS)."""

from __future__ import annotations

import argparse
import os
import sys

from ttsframe.errors import UserError
from ttsframe.eval.compare import add_compare_args, cmd_compare


def cmd_run(args: argparse.Namespace) -> None:
    from ttsframe.config import load_run_config
    from ttsframe.pipeline.runner import run_recipe

    cfg = load_run_config(args.recipe, args.overrides)
    run_recipe(cfg, args.stage, args.stop_stage, force=args.force)


def cmd_slurm_status(args: argparse.Namespace) -> int:
    from ttsframe.config import load_run_config
    from ttsframe.pipeline.chain import report

    return report(load_run_config(args.recipe, args.overrides))


def cmd_config(args: argparse.Namespace) -> None:
    from omegaconf import OmegaConf

    from ttsframe.config import load_run_config

    print(OmegaConf.to_yaml(load_run_config(args.recipe, args.overrides), resolve=True), end="")


# Sampling flags of `synthesize` -> the field of a family's options dataclass they set.
SAMPLING_FLAGS = {"temperature": "--temperature", "top_k": "--top-k", "top_p": "--top-p",
                  "stop_threshold": "--stop-threshold", "max_frames_per_token": "--max-frames-per-token",
                  "min_frames": "--min-frames", "flow_steps": "--flow-steps", "cfg_scale": "--cfg-scale",
                  "flow_temperature": "--flow-temperature", "nfe": "--nfe", "solver": "--solver", "seed": "--seed"}


def cmd_synthesize(args: argparse.Namespace) -> None:
    import dataclasses

    from ttsframe.data.audio import load_audio, save_audio
    from ttsframe.inference import SynthesisItem
    from ttsframe.models.registry import family as family_spec
    from ttsframe.release import load_release, read_release_config, resolve_release

    release = resolve_release(args.release)  # a folder, or a hub id's snapshot in the local cache
    if not release.is_dir():
        raise UserError(f"release folder {args.release} not found (the release stage writes exp/<recipe>/release)")
    family = read_release_config(release)["release"]["family"]
    sampling_options(family_spec(family).options_class(), args, family)  # bad flags fail before loading
    wav, rate = load_audio(args.prompt_wav)  # AudioError (a UserError) if unreadable
    synthesizer = load_release(release, device=args.device)
    options = sampling_options(type(synthesizer.default_options), args, family, synthesizer.default_options)
    item = SynthesisItem(args.text, wav, rate, args.prompt_text)
    if args.stream:
        out = stream_to_file(synthesizer, item, options, args.out, family)
    else:
        [out] = synthesizer.synthesize([item], options)
        save_audio(args.out, out, synthesizer.sample_rate)
    shown = ", ".join(f"{f.name}={getattr(options, f.name)}" for f in dataclasses.fields(options))
    print(f"{args.out}: {len(out) / synthesizer.sample_rate:.2f} s at {synthesizer.sample_rate} Hz ({family}: {shown})")


def stream_to_file(synthesizer, item, options, path: str, family: str):
    """Writes the chunks of `synthesizer.stream` to `path` as they come; returns all the audio."""
    import numpy as np
    import soundfile as sf

    from ttsframe.models.cosyvoice.streaming import StreamStats

    if not hasattr(synthesizer, "stream"):
        raise UserError(f"--stream: {family} releases do not stream (CosyVoice releases do)")
    stats, chunks = StreamStats(), []
    tmp = f"{path}.partial.wav"
    with sf.SoundFile(tmp, "w", samplerate=synthesizer.sample_rate, channels=1, subtype="PCM_16") as f:
        for chunk in synthesizer.stream(item, options, stats=stats):
            f.write(chunk)
            f.flush()
            chunks.append(chunk)
    os.replace(tmp, path)
    print(f"{path}: streamed {stats.chunks} chunks; first chunk after {stats.first_chunk_seconds:.2f} s, "
          f"{stats.audio_seconds:.2f} s of audio in {stats.compute_seconds:.2f} s")
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)


def sampling_options(options_class: type, args: argparse.Namespace, family: str, base=None):
    """The family's options dataclass from the sampling flags given; the others keep `base`'s values
    (the release's recorded options), else the dataclass's defaults."""
    import dataclasses

    fields = {f.name for f in dataclasses.fields(options_class)}
    given = {name: getattr(args, name) for name in SAMPLING_FLAGS if getattr(args, name) is not None}
    wrong = [SAMPLING_FLAGS[name] for name in given if name not in fields]
    if wrong:
        valid = [flag for name, flag in SAMPLING_FLAGS.items() if name in fields]
        raise UserError(f"{', '.join(wrong)}: not an option of {family} releases (they take {', '.join(valid)})")
    try:
        return dataclasses.replace(base, **given) if base is not None else options_class(**given)
    except ValueError as e:
        raise UserError(str(e)) from None


def add_synthesize_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--release", required=True, help="release folder (the release stage's exp/<recipe>/release), or a "
                   "Hugging Face hub id user/name[@revision] in the local cache (TTSFRAME_HUB_DOWNLOAD=1: download)")
    p.add_argument("--text", required=True, help="text to say")
    p.add_argument("--prompt-wav", required=True, help="audio of the voice to imitate (a few seconds)")
    p.add_argument("--prompt-text", required=True, help="transcript of --prompt-wav")
    p.add_argument("--out", required=True, help="output wav file")
    # Every sampling flag left out keeps the release's recorded value (config.yaml `release.sampling`).
    p.add_argument("--temperature", type=float, help="sampling temperature; 0 = greedy / no noise (release's; "
                   "unrecorded: 1.0); DiTAR: the time in [0, 1] at which noise enters the ODE")
    p.add_argument("--top-k", type=int, help="VALL-E: keep the k most likely codes; 0 = all (release's; unrecorded: 0)")
    p.add_argument("--top-p", type=float, help="VALL-E: nucleus sampling mass (release's; unrecorded: 1.0 = off)")
    p.add_argument("--stop-threshold", type=float,
                   help="MELLE, DiTAR: stop when the calibrated stop probability exceeds it "
                        "(release's; unrecorded: MELLE 0.01, DiTAR 0.05)")
    p.add_argument("--max-frames-per-token", type=float, help="longest output, in frames per target phoneme "
                                                               "(release's; unrecorded: 20)")
    p.add_argument("--min-frames", type=int, help="no stop before this many frames (release's; unrecorded: 1)")
    p.add_argument("--flow-steps", type=int, help="CosyVoice: Euler steps of the flow (release's; unrecorded: 10)")
    p.add_argument("--cfg-scale", type=float, help="classifier-free guidance: CosyVoice's flow, DiTAR's LocDiT "
                   "(release's; unrecorded: 0.7 and 1.0)")
    p.add_argument("--flow-temperature", type=float,
                   help="CosyVoice: scale of the flow's starting noise (release's; unrecorded: 1)")
    p.add_argument("--nfe", type=int,
                   help="DiTAR: LocDiT evaluations (ODE steps) per patch (release's; unrecorded: 10)")
    p.add_argument("--solver", help="DiTAR: the ODE solver, ddim or euler (release's; unrecorded: ddim)")
    p.add_argument("--seed", type=int, help="random seed (release's; unrecorded: 0)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1, ...")
    p.add_argument("--stream", action="store_true",
                   help="CosyVoice: write the audio chunk by chunk while the LM decodes; prints the first-chunk latency")


def cmd_import_cosyvoice2(args: argparse.Namespace) -> None:
    from ttsframe.models.cosyvoice.import_cosyvoice2 import import_cosyvoice2

    out = import_cosyvoice2(args.source, args.out, allow_download=True if args.allow_download else None,
                            cache_dir=args.cache_dir)
    print(f"{out}: a release of CosyVoice2-0.5B from {args.source} (python -m ttsframe synthesize --release {out} ...)")


def add_import_cosyvoice2_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="the CosyVoice2-0.5B folder as downloaded (llm.pt, flow.pt, hift.pt, cosyvoice2.yaml, "
                                   "speech_tokenizer_v2.onnx, campplus.onnx, CosyVoice-BlankEN/), or the hub id "
                                   "FunAudioLLM/CosyVoice2-0.5B[@revision] in the local Hugging Face cache")
    p.add_argument("--out", required=True, help="the release folder to write")
    p.add_argument("--allow-download", action="store_true", help="a hub id not in the cache is downloaded (only the "
                   "files the import reads; also TTSFRAME_HUB_DOWNLOAD=1)")
    p.add_argument("--cache-dir", help="the Hugging Face hub cache (default: huggingface_hub's, $HF_HUB_CACHE)")


def cmd_demo(args: argparse.Namespace) -> None:
    from ttsframe.demo.app import serve

    serve(args.release, host=args.host, port=args.port)


def add_demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--release", action="append", required=True,
                   help="release folder; repeat it for side-by-side columns (the same text and prompt go to each)")
    p.add_argument("--port", type=int, default=7860, help="port of the page (default 7860)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0: all)")


# Command name -> (handler, help).
COMMANDS = {
    "run": (cmd_run, "run recipe stages: run RECIPE --stage N --stop-stage M key=value ..."),
    "config": (cmd_config, "print the resolved config of a recipe with overrides, without running it"),
    "slurm-status": (cmd_slurm_status, "how the SLURM jobs of `run RECIPE ... launcher=slurm` stand: slurm-status "
                                       "RECIPE [exp_dir=DIR ...]; names failed jobs and their logs (exit code 1)"),
    "synthesize": (cmd_synthesize, "zero-shot TTS with a release: --release DIR --text T --prompt-wav W "
                                   "--prompt-text P --out OUT"),
    "demo": (cmd_demo, "web demo of releases on the CPU (Gradio): demo --release DIR [--release DIR2 ...] [--port N]"),
    "import-cosyvoice2": (cmd_import_cosyvoice2, "CosyVoice 2's released checkpoint (CosyVoice2-0.5B) as a release "
                                                 "folder: import-cosyvoice2 DIR|FunAudioLLM/CosyVoice2-0.5B --out DIR"),
    "compare": (cmd_compare, "aggregates of several evaluations side by side: compare EXP_DIR|metrics.json ... "
                             "[--system S] [--set S] [--json]"),
}
# Commands with their own arguments (the others take RECIPE key=value ...).
ARGUMENTS = {"synthesize": add_synthesize_args, "compare": add_compare_args, "demo": add_demo_args,
             "import-cosyvoice2": add_import_cosyvoice2_args}


def overview() -> str:
    """Recipes with their stages, and the config groups with their choices (for --help)."""
    from ttsframe.config import GROUPS
    from ttsframe.config.loading import group_choices, load_recipe, recipe_names

    lines = ["recipes (make recipe=NAME stage=N stop_stage=M key=value ...):"]
    for name in recipe_names():
        try:
            recipe = load_recipe(name)
            stages = ", ".join(f"{i} {s.name}" for i, s in enumerate(recipe.stages))
            lines.append(f"  {name:10s} stages: {stages}")
        except UserError as e:
            lines.append(f"  {name:10s} (invalid: {e})")
    lines.append("config groups (group=choice; group.key=value sets one field):")
    for group in GROUPS:
        lines.append(f"  {group:10s} {', '.join(group_choices(group))}")
    lines.append("top-level keys: exp_dir=DIR (default exp/<recipe>), seed=N")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ttsframe",
        description="ttsframe: train zero-shot TTS models with numbered recipe stages.",
        epilog=overview(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="command")
    for name, (handler, help_text) in COMMANDS.items():
        epilog = None if name in ARGUMENTS else overview()
        p = sub.add_parser(name, help=help_text, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(handler=handler)
        if name in ARGUMENTS:
            ARGUMENTS[name](p)
            continue
        p.add_argument("recipe", help="recipe name (recipes/<name>/recipe.yaml) or path to a recipe.yaml")
        p.add_argument("overrides", nargs="*", help="key=value config overrides, e.g. data=ljspeech data.root=DIR")
        if name == "run":
            p.add_argument("--stage", type=int, default=0, help="first stage to run (default 0)")
            p.add_argument("--stop-stage", type=int, default=None, help="last stage to run (default: the last)")
            p.add_argument("--force", action="store_true", help="re-run stages already marked done")
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """The command line parsed; key=value overrides may come after options (`run valle --stage 2
    data=ljspeech`). Bad arguments exit through `parser.error` (SystemExit 2)."""
    args, extra = parser.parse_known_args(argv)
    unknown = [a for a in extra if a.startswith("-") or "=" not in a]
    if unknown or (extra and not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(unknown or extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    return args


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse_args(parser, argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    try:
        code = args.handler(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished work is kept; run the same command again to resume", file=sys.stderr)
        return 130
    return code or 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
