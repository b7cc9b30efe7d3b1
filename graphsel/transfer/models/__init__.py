"""CTR models built from parts: ``options`` (every model's and learner's option dataclass, no
torch), the base model (:mod:`~graphsel.transfer.models.base`), the parts the transfer models
share (:mod:`~graphsel.transfer.models.towers`) and one module per seed method (``ctnet``,
``ecat``, ``diit``, ``ecdctr``), each holding its model, loss, learner and strategy
registration."""
