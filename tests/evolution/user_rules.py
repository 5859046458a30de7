"""A user's own rules, registered on import (by a test, or by ``cli.py --plugin tests/evolution/user_rules.py``):
a removal rule that keeps the links of smallest magnitude and a regrowth rule that scores only the absent links
from the first half of the inputs, easy to recognise in the topology they leave."""
import torch

from sparsenet.evolution import Method, absent_items, register_method, register_regrowth, register_removal, row_blocks

SMALL_FIRST, FIRST_INPUTS, METHOD = "keep_small", "first_half", "user_rules"


def keep_small(layer, **_):
    """Higher for smaller |w|: the largest weights are removed."""
    return 1.0 / (layer.values.detach().abs() + 1e-3)


def first_half(layer, memory_budget, **_):
    """Score 1 for absent links from the first half of the inputs, 0 elsewhere."""
    for start, stop in row_blocks(layer, memory_budget):
        scores = torch.zeros(stop - start, layer.in_features, dtype=layer.values.dtype, device=layer.values.device)
        scores[:, :layer.in_features // 2] = 1.0
        yield absent_items(layer, start, scores)


register_removal(SMALL_FIRST, keep_small)
register_regrowth(FIRST_INPUTS, first_half)
register_method(Method(METHOD, removal=SMALL_FIRST, regrowth=FIRST_INPUTS))
