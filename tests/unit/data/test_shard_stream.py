"""ShardStream: exactly-once splitting over ranks x workers, seeded orders, decoding; the data module."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from ttsframe.data.batching import DynamicBucketer
from ttsframe.data.dataset import BatchedStream, ShardStream, assign_parts, read_part, shard_order
from ttsframe.data.shards import shard_name, write_index, write_shard

SIZES = (23, 5, 17, 1, 30, 9, 15)  # 7 shards, 100 samples: no multiple of 2 ranks x 2 workers
K, N_MELS = 2, 4


def make_split(shard_dir: Path, split: str = "train", sizes=SIZES, feature: str = "codes", seed: int = 0) -> dict:
    """Writes seeded random shards; returns {id: sample} as written."""
    rng = np.random.default_rng(seed)
    written, infos, number = {}, [], 0
    for shard, size in enumerate(sizes):
        samples = []
        for _ in range(size):
            uid = f"spk{number % 3}.utt-{number:04d}"  # a dot inside the id, as real corpora have
            T, L = int(rng.integers(5, 80)), int(rng.integers(3, 20))
            acoustic = (rng.integers(0, 1024, (K, T)).astype(np.int16) if feature == "codes"
                        else rng.standard_normal((T, N_MELS)).astype(np.float16))
            samples.append({"__key__": uid, "tokens.npy": rng.integers(1, 50, L).astype(np.int32),
                            f"{feature}.npy": acoustic,
                            "meta.json": {"id": uid, "speaker": f"spk{number % 3}", "duration": T / 75,
                                          "text": "x", "phonemes": "x", "frames": T}})
            number += 1
        infos.append(write_shard(shard_dir / shard_name(split, shard), samples))
        written.update({s["__key__"]: s for s in samples})
    write_index(shard_dir, split, infos, feature=feature, codec={"name": "test", "n_codebooks": K},
                n_codebooks=K if feature == "codes" else 0, codebook_size=1024, frame_rate=75.0,
                vocab="vocab.json", vocab_size=50)
    return written


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> tuple[Path, dict]:
    shard_dir = tmp_path_factory.mktemp("shards")
    written = make_split(shard_dir)
    make_split(shard_dir, "dev", sizes=(6, 5), seed=1)
    return shard_dir, written


def ids_of(stream) -> list[str]:
    return [item["id"] for item in stream]


@pytest.mark.parametrize("counts", [list(SIZES), [0, 4, 0, 1], [1], [3, 3, 3, 3], [50, 2]])
@pytest.mark.parametrize("world_size,num_workers", [(1, 1), (2, 2), (3, 4), (8, 3)])
def test_assigned_parts_cover_every_sample_once(counts, world_size, num_workers):
    order = shard_order(len(counts), seed=5, epoch=2, shuffle=True)
    seen, per_rank = Counter(), []
    for rank in range(world_size):
        rank_total = 0
        for worker in range(num_workers):
            for p in assign_parts(counts, order, rank, world_size, worker, num_workers):
                assert 0 <= p.start < p.stop <= counts[p.shard]
                seen.update((p.shard, i) for i in range(p.start, p.stop))
                rank_total += p.stop - p.start
        per_rank.append(rank_total)
    assert seen == Counter((s, i) for s, n in enumerate(counts) for i in range(n))
    assert max(per_rank) - min(per_rank) <= 1


def test_one_epoch_over_2_ranks_x_2_workers_yields_every_sample_once(shards):
    shard_dir, written = shards
    per_rank = []
    for rank in (0, 1):
        stream = ShardStream(shard_dir, "train", shuffle=True, shuffle_buffer=8, seed=3, rank=rank, world_size=2)
        per_rank.append(ids_of(DataLoader(stream, batch_size=None, num_workers=2)))
        assert len(per_rank[-1]) == stream.num_samples()
    assert Counter(per_rank[0] + per_rank[1]) == Counter(list(written))
    assert abs(len(per_rank[0]) - len(per_rank[1])) <= 1


def test_batched_stream_over_ranks_and_workers_loses_nothing(shards):
    shard_dir, written = shards
    seen = []
    for rank in (0, 1):
        stream = ShardStream(shard_dir, "train", shuffle=True, seed=1, rank=rank, world_size=2)
        batched = BatchedStream(stream, DynamicBucketer(max_frames=300, num_buckets=3, buffer_size=20))
        for batch in DataLoader(batched, batch_size=None, num_workers=2):
            assert len(batch) == 1 or len(batch) * int((batch.frame_lengths + batch.token_lengths).max()) <= 300
            seen += batch.ids
    assert Counter(seen) == Counter(list(written))


def test_orders_are_seeded_and_change_with_the_epoch(shards):
    shard_dir, written = shards

    def order(seed: int, epoch: int) -> list[str]:
        stream = ShardStream(shard_dir, "train", shuffle=True, shuffle_buffer=16, seed=seed)
        stream.set_epoch(epoch)
        return ids_of(stream)

    first = order(0, 0)
    assert sorted(first) == sorted(written)
    assert order(0, 0) == first
    assert order(0, 1) != first and sorted(order(0, 1)) == sorted(first)
    assert order(1, 0) != first


def test_evaluation_pass_keeps_index_order_and_decodes_exactly(shards):
    shard_dir, written = shards
    items = list(ShardStream(shard_dir, "train"))
    assert [it["id"] for it in items] == list(written)
    for it in items[:10]:
        src = written[it["id"]]
        assert it["tokens"].dtype == torch.long
        assert torch.equal(it["tokens"], torch.from_numpy(src["tokens.npy"]).long())
        assert it["codes"].shape == (K, it["frames"]) and it["codes"].dtype == torch.long
        assert torch.equal(it["codes"], torch.from_numpy(src["codes.npy"]).long())
        assert it["speaker"] == src["meta.json"]["speaker"]


def test_infinite_stream_cycles_whole_epochs(shards):
    shard_dir, written = shards
    stream = ShardStream(shard_dir, "train", shuffle=True, infinite=True, seed=2)
    it = iter(stream)
    epoch0 = [next(it)["id"] for _ in written]
    epoch1 = [next(it)["id"] for _ in written]
    assert sorted(epoch0) == sorted(epoch1) == sorted(written)
    assert epoch0 != epoch1


def test_read_part_skips_to_the_requested_samples(shards):
    shard_dir, written = shards
    keys = [s["__key__"] for s in read_part(str(shard_dir / shard_name("train", 0)), 3, 7)]
    assert keys == list(written)[3:7]


def test_a_shard_shorter_than_its_index_entry_fails_loudly(shards):
    shard_dir, _ = shards
    with pytest.raises(ValueError, match="index is stale"):
        list(read_part(str(shard_dir / shard_name("train", 1)), 0, SIZES[1] + 1))


def test_mel_shards(tmp_path):
    make_split(tmp_path, sizes=(3, 2), feature="mel")
    items = list(ShardStream(tmp_path, "train"))
    assert len(items) == 5
    assert items[0]["mel"].dtype == torch.float32 and items[0]["mel"].shape == (items[0]["frames"], N_MELS)


def test_rank_without_samples_yields_nothing_even_when_infinite(tmp_path):
    make_split(tmp_path, sizes=(1,))
    assert ids_of(ShardStream(tmp_path, "train", infinite=True, rank=0, world_size=2)) == []


def test_data_module_reads_the_index_and_feeds_a_trainer(shards):
    import lightning as L

    from ttsframe.data.datamodule import ShardDataModule

    shard_dir, _ = shards
    dm = ShardDataModule(shard_dir, "train", "dev", None, max_frames=400, num_workers=0, seed=0)
    assert (dm.feature, dm.vocab_size, dm.n_codebooks, dm.vocab_path) == ("codes", 50, K, shard_dir / "vocab.json")
    assert sorted(i for b in dm.val_dataloader() for i in b.ids) == sorted(f"spk{n % 3}.utt-{n:04d}" for n in range(11))

    class Tiny(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(1024, 4)
            self.val_batches = 0

        def training_step(self, batch, _):
            return self.emb(batch.codes.clamp(min=0))[batch.frame_mask[:, None].expand_as(batch.codes)].pow(2).mean()

        def validation_step(self, batch, _):
            assert batch.codes.shape[-1] == batch.frame_mask.shape[1]
            self.val_batches += 1

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    trainer = L.Trainer(max_steps=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=2,
                        val_check_interval=2)
    model = Tiny()
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == 3 and model.val_batches == 4  # sanity check + one at step 2


def test_finite_train_loader_takes_each_pass_epoch(shards):
    from ttsframe.data.datamodule import ShardDataModule

    shard_dir, _ = shards
    with pytest.raises(ValueError, match="persistent_workers"):
        ShardDataModule(shard_dir, "dev", train_infinite=False, persistent_workers=True)
    loader = ShardDataModule(shard_dir, "train", None, None, max_frames=400, num_workers=2,
                             train_infinite=False).train_dataloader()
    epochs = iter(range(2))
    loader.epoch_fn = lambda: next(epochs)  # what trainer.current_epoch gives under Lightning
    first, second = ([i for b in loader for i in b.ids] for _ in range(2))
    assert sorted(first) == sorted(second) and len(first) == sum(SIZES) and first != second
