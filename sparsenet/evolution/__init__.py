"""Dynamic sparse training: removal, link prediction, regrowth, percolation, schedules, methods, engine."""
from .engine import TopologyEngine
from .linkpred import VARIANTS, ch_score_blocks, ch_scores
from .methods import METHODS, Method, make_method
from .optimizer_state import remap_optimizer_state, remap_positions
from .percolation import Chain, SamePosition, percolate
from .removal import REMOVAL_SCORES, magnitude, mest, relative_importance
from .schedule import DensitySchedule, Schedule, method_schedule
from .selection import StreamingTopK, keep_mask, priorities, select_absent

__all__ = ["Chain", "DensitySchedule", "METHODS", "Method", "REMOVAL_SCORES", "SamePosition", "Schedule",
           "StreamingTopK", "TopologyEngine", "VARIANTS", "ch_score_blocks", "ch_scores", "keep_mask", "magnitude",
           "make_method", "method_schedule", "mest", "percolate", "priorities", "relative_importance", "remap_optimizer_state",
           "remap_positions", "select_absent"]
