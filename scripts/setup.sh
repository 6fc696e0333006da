#!/usr/bin/env bash
# Creates .venv/ and installs ttsframe with everything it needs. Called by `make setup`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV=.venv

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install --quiet --upgrade pip

# torch: keep a torch that is already there (a cluster's CUDA build). With none and no GPU,
# take the CPU build 2.13.0 (plain `torch` would pull a multi-GB CUDA build). torchaudio 2.11.0
# declares no torch pin, so it installs beside it without replacing torch.
TORCH_PINS=()
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  if ! command -v nvidia-smi >/dev/null 2>&1; then
    TORCH_PINS=("torch==2.13.0" "torchaudio==2.11.0")
  fi
fi
$PIP install "${TORCH_PINS[@]}" -e ".[test,demo]"

# DAC without its dependency pins (see pyproject.toml for why and for what it really imports).
# Resemblyzer without its `webrtcvad` and `typing` requirements (see pyproject.toml).
$PIP install --no-deps descript-audio-codec==1.0.0 descript-audiotools==0.7.2 resemblyzer==0.1.4

# torchaudio's Linux x86_64 wheels link CUDA libraries, so with a CPU-only torch `import
# torchaudio` fails on libc10_cuda.so. Its Python parts (resample, transforms) work without the
# compiled extension, so remove the extension when torch has no CUDA. Audio I/O uses soundfile.
"$VENV/bin/python" scripts/fix_torchaudio.py

# Debian's flite voices widen the built-in corpus where system packages can be installed.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && ! command -v flite >/dev/null 2>&1; then
  (apt-get install -y --no-install-recommends flite >/dev/null 2>&1 \
    || (apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends flite >/dev/null 2>&1)) \
    || echo "note: flite not installed; the built-in corpus uses espeak-ng voices only"
fi

# ffmpeg: the web demo's live player for streaming releases (Gradio encodes the chunks with it).
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && ! command -v ffmpeg >/dev/null 2>&1; then
  (apt-get install -y --no-install-recommends ffmpeg >/dev/null 2>&1 \
    || (apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends ffmpeg >/dev/null 2>&1)) \
    || echo "note: ffmpeg not installed; the web demo streams without its live player"
fi

# Headless Chromium renders the evaluation report in a test (root + apt only; a note otherwise).
bash scripts/install_chromium.sh

"$VENV/bin/python" -c "import ttsframe, torch, torchaudio, encodec, dac, phonemizer, webdataset, lightning, resemblyzer, faster_whisper, jiwer, pesq, pystoi, speechmos; print('ttsframe setup ok: torch', torch.__version__)"
