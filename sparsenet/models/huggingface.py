"""Moved to ``sparsenet.integrations.huggingface``; this path warns once and re-exports it."""
from ..deprecation import moved
from ..integrations.huggingface import DST_STATE, DSTCallback, load_sparse  # noqa: F401

moved("sparsenet.models.huggingface", "sparsenet.integrations.huggingface")
