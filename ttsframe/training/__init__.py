"""Training glue around Lightning: optimiser and schedules, trainer, callbacks, loggers, exact resume, SLURM."""
