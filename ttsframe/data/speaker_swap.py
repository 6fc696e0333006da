"""Training rows conditioned on another utterance's speaker embedding.

CosyVoice's LM and flow read a speaker embedding. Computed from the very utterance being trained
on, it is also a fingerprint of that utterance: with ~34 utterances per voice the CosyVoice LM fit
its training rows (loss 2.3) far better than unseen ones (3.5). At synthesis the embedding always
comes from another utterance, the prompt. So in training each row takes the embedding of the
previous utterance of its speaker in the stream (the first one of each speaker keeps its own).
"""

from __future__ import annotations

from typing import Iterable, Iterator


def speaker_embedding_from_another(items: Iterable[dict]) -> Iterator[dict]:
    """Yields `items` with each `spk` replaced by the last one seen of the same speaker."""
    last: dict[str, object] = {}
    for item in items:
        if "spk" not in item:
            yield item
            continue
        own = item["spk"]
        yield {**item, "spk": last.get(item["speaker"], own)}
        last[item["speaker"]] = own
