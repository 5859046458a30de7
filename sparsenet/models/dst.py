"""Moved to ``sparsenet.dst`` (the user-facing API's own floor); this path warns once and re-exports it."""
from ..deprecation import moved
from ..dst import DST, chosen_method, start_sparsity  # noqa: F401

moved("sparsenet.models.dst", "sparsenet.dst")
