"""The training engine, its configuration, checkpoints and data-parallel helpers."""
