"""Moved to ``sparsenet.relations`` (the user-facing API's own floor); this path warns once and re-exports it."""
from ..deprecation import moved
from ..relations import find_relations  # noqa: F401

moved("sparsenet.models.relations", "sparsenet.relations")
