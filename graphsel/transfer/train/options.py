"""The training options, importable without torch (a config file loads without it)."""

from __future__ import annotations

from dataclasses import dataclass

from graphsel.errors import InputError

__all__ = ["TrainConfig"]


@dataclass(frozen=True)
class TrainConfig:
    """Options of :class:`Trainer`.

    Attributes:
        epochs: maximum passes over the training data. Default 10.
        batch_size: training batch size ``B``. Default 4096.
        lr: learning rate of the dense parameters (Adam). Default 1e-3.
        embedding_lr: learning rate of sparse embedding tables (SparseAdam). Default None:
            ``lr``.
        weight_decay: L2 penalty of the dense parameters (SparseAdam has none). Default 0.0.
        patience: stop after this many epochs without a better validation AUC. Default 2.
        seed: seeds torch, numpy and random at the start of :meth:`Trainer.fit` and the
            shuffling of every epoch. Default 0.
        num_threads: ``torch.set_num_threads`` during training and prediction, restored
            afterwards. Default None: the thread policy's training threads
            (:func:`graphsel._runtime.training_threads`: one under the default policy,
            ``N`` with ``GRAPHSEL_THREADS=N``, torch's own count with
            ``GRAPHSEL_THREADS=off`` or when the user set ``OMP_NUM_THREADS`` or torch's).
        eval_batch_size: batch size of prediction. Default 65536.
        progress: a tqdm progress bar per epoch: True always, False never. Default None:
            on a terminal only.
        deterministic: ``torch.use_deterministic_algorithms(True)`` during training (CPU
            training is already deterministic at a fixed thread count). Default False.
        device: where the model and batches live. Default ``"cpu"``.
    """

    epochs: int = 10
    batch_size: int = 4096
    lr: float = 1e-3
    embedding_lr: float | None = None
    weight_decay: float = 0.0
    patience: int = 2
    seed: int = 0
    num_threads: int | None = None
    eval_batch_size: int = 65536
    progress: bool | None = None
    deterministic: bool = False
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise InputError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.num_threads is not None and self.num_threads < 1:
            raise InputError(f"TrainConfig.num_threads must be >= 1, got {self.num_threads}")
