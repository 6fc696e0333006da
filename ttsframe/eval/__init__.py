"""Objective evaluation of synthesized speech (mel distance; ASR WER, speaker similarity, RTF to come)."""
