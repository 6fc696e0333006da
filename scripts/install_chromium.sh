#!/usr/bin/env bash
# Installs Debian's chromium, which the report test (tests/unit/eval/test_report.py) runs headless
# to check that report.html renders every spectrogram and player. Root + apt-get only; otherwise
# prints a note. Always exits 0: a missing browser only skips that one test.
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
  || command -v google-chrome >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: chromium not installed (needs root and apt-get); the headless report test is skipped"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
install() { apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1; }
install || (apt-get update -q >/dev/null 2>&1 && install) \
  || echo "note: apt-get could not install chromium; the headless report test is skipped"
exit 0
