"""Web demo of releases: `python -m ttsframe demo --release DIR [--release DIR2 ...] [--port N]`.

A Gradio page on the CPU: target text, a voice prompt (upload or microphone) and its transcript
(left empty: the bundled ASR writes it), then per release a column with its family's sampling
options, the audio, its spectrogram, duration and RTF. Several releases get the same text and
prompt, side by side, for A/B listening. One file per job:

    releases.py     load each release once (`ttsframe.release.load_release`, CPU) and name it
    options.py      the controls of a family's sampling-options dataclass, and values -> options
    inputs.py       the checks of text, prompt audio and transcript (the page's error messages)
    transcribe.py   the bundled offline ASR (faster-whisper tiny.en), loaded on first use
    synthesis.py    one release's run: audio, seconds, RTF
    streaming.py    a streaming release's run (CosyVoice): chunks to the live player, then the result
    spectrogram.py  audio -> a spectrogram image (matplotlib, no pyplot state)
    display.py      text made safe for Markdown, error lines, audio as the players' int16
    examples.py     example requests from the synthesize stage beside a release, if any
    app.py          the gr.Blocks page, and `serve` (queue on, one request at a time per release)

Only `app.py` imports Gradio, so the checks here work without the `demo` extra. Nothing here
imports Lightning or OmegaConf.
"""
