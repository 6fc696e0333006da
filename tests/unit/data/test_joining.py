"""Joined rows (`ttsframe.data.joining`): two utterances of one speaker in one row, nothing lost."""

import numpy as np
import torch

from ttsframe.data.joining import join_items, join_same_speaker


def item(uid, speaker, n_tokens=3, frames=5, last_token=7):
    tokens = torch.arange(1, n_tokens + 1)
    tokens[-1] = last_token
    return {"id": uid, "speaker": speaker, "tokens": tokens, "frames": frames,
            "mel": torch.full((frames, 2), float(len(uid))), "speech": torch.arange(frames // 2),
            "spk": torch.full((4,), float(speaker == "b"))}


def test_a_joined_row_is_a_then_the_boundary_then_b():
    a, b = item("a1", "a", last_token=9), item("a22", "a", frames=6)
    row = join_items(a, b, boundary_id=4)
    assert row["id"] == "a1+a22" and row["speaker"] == "a" and row["frames"] == 11
    assert row["tokens"].tolist() == [1, 2, 9, 4, 1, 2, 7]
    assert torch.equal(row["mel"], torch.cat([a["mel"], b["mel"]])) and row["mel"].shape == (11, 2)
    assert row["speech"].tolist() == [0, 1, 0, 1, 2]
    assert torch.equal(row["spk"], b["spk"])
    assert join_items(item("x", "a", last_token=4), b, boundary_id=4)["tokens"].tolist() == [1, 2, 4, 1, 2, 7]


def test_every_item_comes_out_once_and_joins_keep_to_one_speaker():
    rng = np.random.default_rng(0)
    items = [item(f"u{i}", "ab"[int(rng.integers(2))]) for i in range(200)]
    rows = list(join_same_speaker(iter(items), 0.3, np.random.default_rng(1), boundary_id=4))
    ids = [part for row in rows for part in row["id"].split("+")]
    assert sorted(ids) == sorted(i["id"] for i in items)
    joined = [row for row in rows if "+" in row["id"]]
    assert 40 < len(joined) < 80  # ~0.3 of 200 items open a join
    speakers = {i["id"]: i["speaker"] for i in items}
    assert all(len({speakers[p] for p in row["id"].split("+")}) == 1 for row in joined)


def test_no_share_or_too_long_leaves_the_rows_alone():
    items = [item(f"u{i}", "a") for i in range(20)]
    assert [r["id"] for r in join_same_speaker(iter(items), 0.0, np.random.default_rng(0), 4)] == [
        i["id"] for i in items]
    rows = list(join_same_speaker(iter(items), 0.9, np.random.default_rng(0), 4, max_length=10))
    assert sorted(r["id"] for r in rows) == sorted(i["id"] for i in items)  # 5 + 5 + 3 + 3 + 1 > 10


def test_training_rows_take_another_utterances_speaker_embedding():
    from ttsframe.data.speaker_swap import speaker_embedding_from_another

    items = [dict(item(f"u{i}", speaker), spk=torch.tensor([float(i)])) for i, speaker in enumerate("aabab")]
    rows = list(speaker_embedding_from_another(iter(items)))
    assert [float(r["spk"]) for r in rows] == [0.0, 0.0, 2.0, 1.0, 2.0]  # the previous one of its speaker
    assert [r["id"] for r in rows] == [i["id"] for i in items]
