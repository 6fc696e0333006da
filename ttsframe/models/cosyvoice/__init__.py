"""CosyVoice: a text LM over supervised speech tokens, then a conditional flow-matching decoder tokens -> mel."""
