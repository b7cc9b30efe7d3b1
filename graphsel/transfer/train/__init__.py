"""Training: ``options`` (:class:`~graphsel.transfer.train.options.TrainConfig`, no torch),
``trainer`` (fit, predict, evaluate, checkpoints), ``optim`` (sparse-aware optimisers),
``losses`` (weighted BCE, the distillation terms ECAT and DIIT share) and ``metrics``."""
