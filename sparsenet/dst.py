"""``DST``: dynamic sparse training in any training loop, one object around ``TopologyEngine``.

    sparsenet.sparsify(model, 0.9)
    optimizer = torch.optim.AdamW(model.parameters())
    dst = sparsenet.DST(model, optimizer, method="chts", total_steps=10_000, update_interval=100)
    for x, y in batches:
        loss_fn(model(x), y).backward()
        optimizer.step()
        dst.step()              # after optimizer.step(), before zero_grad(): RigL and MEST read the gradient
        optimizer.zero_grad()

Methods by registered name (``sparsenet.evolution.method_names()``; ``register_method`` adds yours) with the
same overrides as the CLI's method options (``removal=``, ``regrowth=``, ``percolation=``, ``zeta_decay=``, ...).
Percolation relations come from the model's module names (``find_relations``) unless given; when the method
percolates and none are found, a warning says so.
"""
import warnings

from torch import nn

from .evolution import DensitySchedule, TopologyEngine, make_method, method_schedule
from .topology import sparse_layers
from .relations import find_relations


def start_sparsity(method: str, sparsity: float) -> float:
    """The sparsity to ``sparsify`` at for ``method`` ending at ``sparsity``: lower for methods whose
    density decays (CHTss starts at 50% density, MEST at its elastic start), else ``sparsity`` itself."""
    schedule = make_method("static" if method == "fc" else method).density_schedule
    return 1.0 - DensitySchedule(1.0 - sparsity, schedule).start()


def chosen_method(method: str, method_options: dict):
    """The ``Method`` named ``method`` with ``method_options`` applied; ``ValueError`` (one line) for an unknown
    name or option, and for ``init`` / ``weights`` (the starting topology and values are ``sparsify``'s)."""
    if {"init", "weights"} & set(method_options):
        raise ValueError("DST takes no init= or weights=: the starting topology and values are sparsify's "
                         "(sparsenet.sparsify(model, sparsity, init=..., weights=...))")
    return make_method(method, **method_options)


class DST:
    """Topology updates of ``model``'s ``SparseLinear`` modules while ``optimizer`` (one or a list) trains it.

    method: a registered method's name (set, rigl, mest, cht, chts, chtss, static, or yours). total_steps
    (required): optimizer steps of the whole run (the removal exponent, ζ decay and density schedule are spread
    over it); update_interval: steps between topology updates; zeta: removal fraction per update.
    sparsity: the final sparsity (default: each layer's current one). relations: percolation relations
    (default ``find_relations(model)``). seed: the engine's generator. ``method_options``: ``Method``
    fields to override. ``step()`` counts optimizer steps and returns an update's statistics or None.
    """

    def __init__(self, model: nn.Module, optimizer, method: str = "chts", *, total_steps: int,
                 update_interval: int = 100, zeta: float = 0.3, sparsity: float | None = None, relations=None,
                 seed: int = 0, **method_options):
        if not sparse_layers(model):
            raise ValueError("the model has no SparseLinear module: call sparsenet.sparsify(model, ...) first")
        chosen = chosen_method(method, method_options)
        relations = find_relations(model) if relations is None else list(relations)
        if chosen.percolation and not relations:
            warnings.warn(f"DST {method}: no percolation relations found in this model's module names, so dead "
                          f"neurons will not percolate; pass relations=[Chain(...), SamePosition(...)] "
                          f"(sparsenet.evolution) or percolation=False", stacklevel=2)
        density = None if sparsity is None else 1.0 - sparsity
        self.engine = TopologyEngine(model, optimizer, chosen, method_schedule(chosen, update_interval, total_steps,
                                                                              zeta),
                                     density=density, relations=relations, seed=seed)
        self.steps = 0

    @property
    def method(self):
        return self.engine.method

    def step(self) -> dict | None:
        """Count one optimizer step; apply the topology update if one is due (its statistics, else None)."""
        self.steps += 1
        return self.engine.step(self.steps)

    def state_dict(self) -> dict:
        """What resuming needs besides the model's and optimizer's state dicts."""
        return {"steps": self.steps, "engine": self.engine.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.steps = state["steps"]
        self.engine.load_state_dict(state["engine"])
