"""ttsframe: end-to-end zero-shot TTS training."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy, so that `import ttsframe` stays light (no torch until a release is loaded).
    if name == "load_release":
        from ttsframe.release import load_release

        return load_release
    raise AttributeError(f"module 'ttsframe' has no attribute {name!r}")
