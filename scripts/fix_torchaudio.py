"""Make torchaudio importable beside a CPU-only torch (see scripts/setup.sh)."""

import importlib.util
import pathlib
import subprocess
import sys


def main() -> None:
    probe = "import torchaudio"
    if subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0:
        return
    import torch

    if torch.version.cuda is not None:
        sys.exit("torchaudio fails to import beside a CUDA torch: install the matching torchaudio")
    spec = importlib.util.find_spec("torchaudio")
    if spec is None or spec.origin is None:
        return
    lib = pathlib.Path(spec.origin).parent / "lib"
    for so in lib.glob("*.so"):
        so.unlink()
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"torchaudio still fails to import:\n{result.stderr}")
    print("torchaudio: removed its CUDA-linked extension (CPU-only torch); pure-Python parts work")


if __name__ == "__main__":
    main()
