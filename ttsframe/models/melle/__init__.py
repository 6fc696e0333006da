"""MELLE: autoregressive language model over continuous mel frames (no vector quantization)."""
