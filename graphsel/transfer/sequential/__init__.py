"""Cross-domain sequential (next-item) recommendation: SyNCRec, its ablations, SASRec.

* :mod:`~graphsel.transfer.sequential.options`: every option and the model variants (no
  torch);
* :mod:`~graphsel.transfer.sequential.model`: the SyNCRec module (ACMoE experts, gates,
  towers), LC-NTG and SC-MIM;
* :mod:`~graphsel.transfer.sequential.train`: windows, batches, training with selection on
  validation;
* :mod:`~graphsel.transfer.sequential.evaluate`: leave-one-out ranking metrics and CIs;
* :mod:`~graphsel.transfer.sequential.runner`: ``task: next_item`` configs and
  :func:`~graphsel.transfer.sequential.runner.run_next_item`.

The data side is :mod:`graphsel.data.sequences`.
"""
