"""Dynamic sparse training: removal, link prediction, regrowth, percolation, schedules, methods, engine.

Removal rules, regrowth rules and methods are registries: ``register_removal``, ``register_regrowth``,
``register_method`` add a user's own (see ``removal.py``, ``regrowth.py``, ``methods.py``)."""
from .engine import TopologyEngine
from .linkpred import VARIANTS, ch_score_blocks, ch_scores
from .methods import METHODS, Method, make_method, method_names, register_method
from .optimizer_state import remap_optimizer_state, remap_positions
from .percolation import Chain, SamePosition, percolate
from .regrowth import REGROWTHS, RegrowthRule, absent_items, register_regrowth, row_blocks
from .removal import REMOVALS, RemovalRule, magnitude, mest, register_removal, relative_importance
from .schedule import DensitySchedule, Schedule, method_schedule
from .selection import StreamingTopK, keep_mask, priorities, select_absent

__all__ = ["Chain", "DensitySchedule", "METHODS", "Method", "REGROWTHS", "REMOVALS", "RegrowthRule", "RemovalRule",
           "SamePosition", "Schedule", "StreamingTopK", "TopologyEngine", "VARIANTS", "absent_items", "ch_score_blocks",
           "ch_scores", "keep_mask", "magnitude", "make_method", "mest", "method_names", "method_schedule", "percolate",
           "priorities", "register_method", "register_regrowth", "register_removal", "relative_importance",
           "remap_optimizer_state", "remap_positions", "row_blocks", "select_absent"]
