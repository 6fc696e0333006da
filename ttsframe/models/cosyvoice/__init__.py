"""CosyVoice: a text-speech language model over supervised speech tokens, then flow matching to mel."""
