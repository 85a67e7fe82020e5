"""Stage 2, train: the one training loop (``trainer``: early stopping, DDP, devices) and the
``train`` command (``run``: run directories, k-fold cross-validation)."""
