"""Schemas of the training config groups: `model`, `trainer` and `launcher`.

`model` picks a family's preset and the optimiser; `trainer` says where and how long to train
(Lightning's Trainer plus the batching of the data); `launcher` says whether the stages run
in this process or are submitted to SLURM.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

SCHEDULES = ("cosine", "linear", "noam", "constant")


@dataclass
class OptimConfig:
    name: str = "adamw"
    lr: float = 1e-3  # peak learning rate, reached at the end of the warmup
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    eps: float = 1e-8
    weight_decay: float = 0.01  # not applied to norms, biases and embeddings
    warmup_steps: int = 100  # linear warmup from 0
    schedule: str = "cosine"  # cosine | linear | noam | constant (after the warmup)
    min_lr_ratio: float = 0.1  # floor of cosine/linear/noam, as a fraction of lr
    decay_steps: int | None = None  # where cosine/linear reach the floor; null = trainer.max_steps


@dataclass
class ModelConfig:
    family: str = "valle"  # the model family; the stage's task must belong to it
    preset: str = "valle_tiny"  # a named size of the family (ttsframe/models/<family>/presets.py)
    # Architecture overrides; null keeps the preset's value.
    d_model: int | None = None
    n_layers: int | None = None
    n_heads: int | None = None
    ffn_dim: int | None = None
    dropout: float | None = None
    reduction_factor: int | None = None  # MELLE: mel frames per decoder step (1..4)
    self_feed: float | None = None  # MELLE, DiTAR (with regression_prior): share of training inputs that are the model's own prediction
    input_noise: float | None = None  # VALL-E AR: share of input codes replaced by random ones in training
    patch_size: int | None = None  # DiTAR: frames per LM step (1, 2, 4 or 8)
    history: int | None = None  # DiTAR: patches before the target that LocDiT reads
    history_dropout: float | None = None  # DiTAR: share of training patches whose LocDiT sees no history
    input_dropout: float | None = None  # DiTAR: dropout on the LM's patch inputs in training
    alignment_heads: int | None = None  # DiTAR: LM heads trained to look at the text on the diagonal (0: off)
    alignment_layer: int | None = None  # DiTAR: the LM layer of those heads
    alignment_target: str | None = None  # DiTAR: where they look: diagonal | aligner (a forward-sum aligner's phoneme)
    phoneme_pointer: bool | None = None  # DiTAR, MELLE, VALL-E AR: inputs carry the aligned phoneme, a head moves it
    advance_grad_scale: float | None = None  # DiTAR, MELLE, VALL-E AR: factor on that head's gradient into the LM
    advance_sees_group: bool | None = None  # MELLE: the advance head also reads the group it moves after
    pointer_jitter: float | None = None  # MELLE: share of training steps fed a neighbour's pointer
    duration_plan: bool | None = None  # MELLE, DiTAR (with phoneme_pointer): a text-only duration predictor plans the track
    pointer_context: int | None = None  # MELLE, DiTAR (with phoneme_pointer): conv layers encoding the text around the pointer
    time_logit_mean: float | None = None  # DiTAR: logit-normal training times around it (null: uniform)
    regression_prior: bool | None = None  # DiTAR: a head regresses each patch; LocDiT models the residual
    # Loss weights of families that take them (MELLE: kl_weight, flux_weight, stop_weight,
    # stop_pos_weight, aligner_weight, advance_weight, duration_weight; DiTAR: diffusion_weight, stop_weight, stop_pos_weight, alignment_weight,
    # alignment_sigma; VALL-E: aligner_weight, advance_weight, the AR's phoneme pointer's); empty keeps the
    # family's defaults.
    loss: dict[str, Any] = field(default_factory=dict)
    optim: OptimConfig = field(default_factory=OptimConfig)
    # Released weights the train stage starts from (the model's sizes are theirs; `preset` and the
    # overrides above are not used): a folder or a Hugging Face hub id. CosyVoice: a CosyVoice 2
    # download (llm.pt for train_lm, flow.pt for train_flow) or a cosyvoice release folder.
    init_from: str | None = None


# ModelConfig's architecture overrides, handed to the family's `build_model_config` when set
ARCHITECTURE_FIELDS = tuple(f.name for f in fields(ModelConfig)
                            if f.name not in ("family", "preset", "loss", "optim", "init_from"))


@dataclass
class TrainerConfig:
    accelerator: str = "auto"  # auto | cpu | gpu
    devices: Any = 1  # processes per node: an int, or "auto"
    num_nodes: int = 1
    strategy: str = "auto"  # auto | ddp | ddp_spawn | fsdp (auto: ddp when more than one device)
    precision: str | None = None  # null: bf16-mixed on CUDA, else 32-true
    max_steps: int = 1000  # optimizer steps; the train stream is endless, this ends training
    # per train stage, by stage name: its own max_steps (e.g. {train_lm: 1000}); others take max_steps
    stage_max_steps: dict[str, int] = field(default_factory=dict)
    val_check_interval: int = 200  # validate every N optimizer steps
    limit_val_batches: Any = 1.0  # float: share of the dev split; int: batches
    num_sanity_val_steps: int = 2
    log_every_n_steps: int = 10
    gradient_clip_val: float | None = 1.0
    accumulate_grad_batches: int = 1
    max_frames: int = 20000  # per batch: B x (frames + tokens) of the longest sample
    max_batch_size: int | None = None
    num_buckets: int = 10
    num_workers: int = 2  # dataloader processes per rank
    # share of training items that open a row joining two utterances of one speaker: the zero-shot
    # layout [prompt text + target text ; prompt audio, target audio] (`ttsframe.data.joining`).
    # A VALL-E memorizing 16 utterances said them back at WER 0.219 with 0.6 (0.9 the same), 0.486 with 0.3
    joined_rows: float = 0.6
    # training rows take the speaker embedding of another utterance of their speaker, as synthesis
    # does with its prompt (`ttsframe.data.speaker_swap`; shards with speaker embeddings only)
    spk_from_other_utterance: bool = True
    logger: str = "wandb"  # wandb (offline unless logged in) | csv | tensorboard
    wandb_project: str = "ttsframe"
    checkpoint_every_n_steps: int = 500  # last.ckpt; best.ckpt follows each validation
    # also keep checkpoints/step<N>.ckpt every N steps (null: none), e.g. for the WER-against-steps
    # curve of `benchmarks/wer_curve.py`, which synthesizes with each
    snapshot_every_n_steps: int | None = None
    find_unused_parameters: bool = False  # DDP: only for models that skip parameters in a step
    seed: int | None = None  # null: the run's top-level seed
    progress_bar: bool = True
    audio_samples: int = 2  # dev utterances rendered to audio + spectrogram at each validation (0: off)
    # torch intra-op threads of each train process (null: SLURM's cpus-per-task under SLURM, else torch's
    # default); runs that must match bit for bit need the same count (`ttsframe.training.threads`)
    threads: int | None = None


@dataclass
class LauncherConfig:
    name: str = "local"  # local: run in this process | slurm: each stage a batch job (`ttsframe.pipeline.chain`)
    submit: bool = True  # slurm: false only writes <stage dir>/slurm.sbatch
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time: str = "48:00:00"
    cpus_per_task: int = 8
    mem: str | None = None  # e.g. 0 (all of the node's memory) or 200G
    gpus_per_node: int | None = None  # null: trainer.devices on GPU, none on CPU
    job_name: str | None = None  # null: <recipe>-<stage name>
    requeue: bool = True  # --requeue; train jobs also get a SIGUSR1 before the time limit: they checkpoint and requeue
    signal_seconds: int = 90  # how long before the time limit SLURM sends SIGUSR1
    array: int = 0  # tokenize: write the shards with a job array of this many tasks (0 or 1: one job)
    array_task: str | None = None  # set by an array's job scripts: "plan", or the task number
    setup: list[str] = field(default_factory=list)  # shell lines run before srun (module load, ...)
    extra_sbatch: list[str] = field(default_factory=list)  # more options, e.g. "--constraint=h100"
