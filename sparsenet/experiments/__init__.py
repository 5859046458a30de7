"""Experiment tooling around the recipes: W&B sweeps run here or on W&B (sweeps), results tables beside the
paper's numbers (table, paper), and the training-memory measurement (training_memory)."""
