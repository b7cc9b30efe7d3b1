"""Training: the trainer (weighted loss, sparse-aware optimiser, early stopping) and metrics."""
