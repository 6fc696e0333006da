"""ttsframe: end-to-end zero-shot TTS training."""

from ttsframe.version import __version__

__all__ = ["__version__"]


def __getattr__(name: str):
    # Lazy, so that `import ttsframe` stays light (no torch until a release is loaded).
    if name == "load_release":
        from ttsframe.release import load_release

        return load_release
    raise AttributeError(f"module 'ttsframe' has no attribute {name!r}")
