"""Speech tokenizers: waveform -> content tokens (see `base.SpeechTokenizer`).

    fsq.py     finite scalar quantisation, the bottleneck of the supervised tokenizers
    s3_asr/    a supervised tokenizer: an ASR encoder with an FSQ bottleneck trained with CTC
"""

from ttsframe.tokenizers.base import SpeechTokenizer

__all__ = ["SpeechTokenizer"]
