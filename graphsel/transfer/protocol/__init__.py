"""The comparison protocol, one module per run step: ``split`` (time split), ``strategies``
(which source rows), ``learners`` (what trains on them), ``runner`` (select, encode, train),
``results`` (score, tabulate) and ``experiment`` (a whole run from a config)."""
