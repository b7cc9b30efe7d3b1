"""CTR models built from parts: the base model (:mod:`~graphsel.transfer.models.base`) and the
seed papers' transfer models, one module per method."""
