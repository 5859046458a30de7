"""Moved to ``sparsenet.sparsify`` (the user-facing API's own floor); this path warns once and re-exports it."""
from ..deprecation import moved
from ..sparsify import (KEEP_RULES, MAGNITUDE_BLOCK_ELEMENTS, SparsifiedModule, SparsifyReport,  # noqa: F401
                        densify, select_linears, sparsify)

moved("sparsenet.models.sparsify", "sparsenet.sparsify")
