"""CosyVoice 2's released LM (`llm.pt`, its Qwen2LM) in our `SpeechLM` (style cosyvoice2).

Their LM is a Qwen2.5-0.5B (`Qwen2ForCausalLM`, whose embedding embeds the text and whose own
vocabulary head is unused) between three tables of its own: `llm_embedding` (2 rows: sos, task
id), `speech_embedding` (6561 + 3 rows) and `llm_decoder` (a linear head to 6561 + 3 ids: eos 6561,
an unused stop id 6562, fill 6563). Ours holds the same as `special_embedding`, `speech_embedding`,
`head` and `backbone.model` (a `transformers.Qwen2Model`), with `LMConfig.release_layout`; rows are
packed [sos, text, task, speech] as theirs (bistream: [sos, (5 text, 15 speech)..., text, task,
speech]).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ttsframe.inference.state_map import renamer
from ttsframe.models.cosyvoice.lm import LMConfig, SpeechLM
from ttsframe.models.cosyvoice.presets import lm_qwen2_release

QWEN_VOCAB = 151_936  # Qwen2.5's embedding rows (its BPE vocabulary, special tokens, padding)
SKIPPED = ""  # a rename to this: their key is known and has no use here (not an error)


def released_lm() -> LMConfig:
    """CosyVoice2-0.5B's LM: Qwen2.5-0.5B's shape over Qwen's text vocabulary, 6561 speech tokens."""
    return lm_qwen2_release(QWEN_VOCAB, 6561)


_RENAMES = (  # theirs -> ours
    (r"llm_embedding\.weight", lambda m: "special_embedding.weight"),
    (r"speech_embedding\.weight", lambda m: "speech_embedding.weight"),
    (r"llm_decoder\.(weight|bias)", lambda m: f"head.{m[1]}"),
    (r"llm\.model\.model\.(.+)", lambda m: f"backbone.model.{m[1]}"),
    (r"llm\.model\.lm_head\.weight", lambda m: SKIPPED),  # Qwen's text head (tied to its embedding)
)
llm_key = renamer(_RENAMES)  # CosyVoice's Qwen2LM keys -> ours; None: no place here


def convert_llm_state(state: dict[str, torch.Tensor], config: LMConfig | None = None,
                      what: str = "llm state dict") -> SpeechLM:
    """A SpeechLM of `config` (default: `released_lm()`) holding CosyVoice 2's LM weights `state`."""
    from ttsframe.inference.state_map import map_state

    model = SpeechLM(config or released_lm())
    mapped = map_state(state, llm_key, model.state_dict(), what)
    model.load_state_dict(mapped, strict=True)
    return model.eval()


def load_llm_checkpoint(path: str | Path, config: LMConfig | None = None) -> SpeechLM:
    """The LM in CosyVoice 2's `llm.pt` (a torch state dict; nothing in it is executed)."""
    from ttsframe.inference.state_map import read_torch_state

    return convert_llm_state(read_torch_state(path, "CosyVoice 2 llm.pt"), config, str(path))
