"""Objective evaluation of synthesized speech: WER/CER, speaker similarity, signal metrics, MOS
predictors, the report and run comparison (one module each)."""
