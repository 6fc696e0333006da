"""The releases a demo serves: each loaded once, on the CPU, with a name and its options class."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ttsframe.errors import UserError


@dataclass
class DemoRelease:
    """One loaded release.

    Attributes:
        name: how the page names it (the shortest unique tail of its path).
        path: its folder.
        synthesizer: what `load_release` returned (`.synthesize`, `.sample_rate`, `.frontend`, `.vocab`).
        options_class: its family's frozen sampling-options dataclass (`OPTIONS` of the synthesizer).
    """

    name: str
    path: Path
    synthesizer: Any
    options_class: type

    @property
    def default_options(self):
        """The release's recorded sampling options (`load_release`), else the dataclass's defaults."""
        return getattr(self.synthesizer, "default_options", None) or self.options_class()

    @property
    def family(self) -> str:
        return self.synthesizer.FAMILY

    @property
    def title(self) -> str:
        return getattr(self.synthesizer, "TITLE", self.family)


def options_class_of(synthesizer) -> type:
    """The synthesizer's `OPTIONS`, else its family's registered options class."""
    options = getattr(type(synthesizer), "OPTIONS", None)
    if options is None:
        from ttsframe.models.registry import family

        options = family(synthesizer.FAMILY).options_class()
    return options


def release_names(paths: list[Path]) -> list[str]:
    """The shortest path tails that tell the releases apart; at least two parts for folders named
    `release` (the release stage's exp/<recipe>/release)."""
    parts = [Path(p).resolve().parts for p in paths]
    names = []
    for own in parts:
        k = 2 if own[-1] == "release" else 1
        while k < len(own) and sum(other[-k:] == own[-k:] for other in parts) > 1:
            k += 1
        names.append("/".join(own[-k:]))
    return names


def load_releases(paths: list[str | Path], device: str = "cpu") -> list[DemoRelease]:
    """Loads every release once.

    Raises:
        UserError: no releases, a path given twice, or one that is not a release folder.
    """
    from ttsframe.release import load_release

    paths = [Path(p) for p in paths]
    if not paths:
        raise UserError("the demo needs at least one --release DIR")
    resolved = [p.resolve() for p in paths]
    if len(set(resolved)) != len(resolved):
        raise UserError("a release folder is given twice: each --release is loaded once, as one column")
    releases = []
    for path, name in zip(paths, release_names(paths)):
        synthesizer = load_release(path, device=device)
        releases.append(DemoRelease(name, path, synthesizer, options_class_of(synthesizer)))
    return releases
