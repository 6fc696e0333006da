"""S3-ASR: a supervised speech tokenizer (an ASR encoder with an FSQ bottleneck, trained with CTC).

    features.py   Whisper's log-mel front end (16 kHz, 80 bands, 100 Hz)
    model.py      S3AsrConfig, S3AsrModel (conv subsampling, transformer, FSQ, transformer, CTC head)
    presets.py    s3_asr_tiny (CPU), s3_asr_base (CosyVoice 2's size)
    ctc.py        phone targets, CTC loss, greedy decoding, phone error rate
    train.py      a plain PyTorch training loop with the quantiser warm-up
    tokenizer.py  S3AsrTokenizer: the trained model as a SpeechTokenizer
"""

from ttsframe.tokenizers.s3_asr.model import S3AsrConfig, S3AsrModel
from ttsframe.tokenizers.s3_asr.presets import PRESETS, get_preset
from ttsframe.tokenizers.s3_asr.tokenizer import S3AsrTokenizer

__all__ = ["S3AsrConfig", "S3AsrModel", "S3AsrTokenizer", "PRESETS", "get_preset"]
