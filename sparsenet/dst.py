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

Checked before any step, each a one-line ``ValueError``: every argument's range, that the optimizer(s) hold
every sparse layer's ``values`` (an optimizer built before ``sparsify`` holds the replaced dense weights), that
an update fits in the run, and that a loaded state is one of this model's sparse layers (names and shapes).
"""
import numbers
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


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_arguments(update_interval, zeta, sparsity, seed, total_steps=None) -> None:
    """``ValueError`` (one line) for an argument of ``DST`` (or ``DSTCallback``) out of its range: update_interval
    and total_steps ints >= 1, zeta in [0, 1), sparsity None or in (0, 1), seed an int."""
    if not _is_int(update_interval) or update_interval < 1:
        raise ValueError(f"update_interval must be an int >= 1 (optimizer steps between updates), got "
                         f"{update_interval!r}")
    if total_steps is not None and (not _is_int(total_steps) or total_steps < 1):
        raise ValueError(f"total_steps must be an int >= 1 (optimizer steps of the whole run), got {total_steps!r}")
    if not _is_real(zeta) or not 0.0 <= zeta < 1.0:
        raise ValueError(f"zeta must be a number in [0, 1) (the share of links removed per update), got {zeta!r}")
    if sparsity is not None and (not _is_real(sparsity) or not 0.0 < sparsity < 1.0):
        raise ValueError(f"sparsity must be a number in (0, 1) or None (each layer's current one), got "
                         f"{sparsity!r}")
    if not _is_int(seed):
        raise ValueError(f"seed must be an int, got {seed!r}")


def check_optimizers(model: nn.Module, optimizers) -> None:
    """``ValueError`` (one line) unless ``optimizers`` (one or a list) are optimizers that together hold the
    ``values`` of every ``SparseLinear`` of ``model``."""
    optimizers = list(optimizers) if isinstance(optimizers, (list, tuple)) else [optimizers]
    if not optimizers or not all(hasattr(o, "param_groups") for o in optimizers):
        raise ValueError(f"optimizer must be a torch.optim.Optimizer or a list of them, got "
                         f"{[type(o).__name__ for o in optimizers]}")
    held = {id(p) for o in optimizers for group in o.param_groups for p in group["params"]}
    names = {}
    for name, module in model.named_modules():
        names.setdefault(module, name)
    layers = sparse_layers(model)
    missing = [names[layer] for layer in layers if id(layer.values) not in held]
    if len(missing) == len(layers):
        raise ValueError(f"the optimizer holds none of the sparse layers' values (the first: {missing[0]!r}), so "
                         f"they would never train: build the optimizer after sparsenet.sparsify(model, ...), "
                         f"which replaces the modules and their parameters")
    if missing:
        raise ValueError(f"the optimizer does not hold the values of the sparse layer {missing[0]!r} "
                         f"({len(missing)} of {len(layers)} missing), so it would never train: "
                         f"pass every SparseLinear's values to the optimizer(s)")


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
    Every argument, the optimizer and the schedule are checked here, before any step (one-line ``ValueError``).
    """

    def __init__(self, model: nn.Module, optimizer, method: str = "chts", *, total_steps: int,
                 update_interval: int = 100, zeta: float = 0.3, sparsity: float | None = None, relations=None,
                 seed: int = 0, **method_options):
        if not sparse_layers(model):
            raise ValueError("the model has no SparseLinear module: call sparsenet.sparsify(model, ...) first")
        chosen = chosen_method(method, method_options)
        check_arguments(update_interval, zeta, sparsity, seed, total_steps)
        check_optimizers(model, optimizer)
        schedule = method_schedule(chosen, update_interval, total_steps, zeta)
        if chosen.removal is not None and schedule.last_update <= 0:
            fix = f"choose update_interval < {schedule.end}" if schedule.end > 1 else "choose a longer total_steps"
            raise ValueError(f"update_interval {update_interval} leaves no topology update before step "
                             f"{schedule.end} (of total_steps {total_steps}) for the dynamic method {method!r}: "
                             f"{fix}, or method='static'")
        relations = find_relations(model) if relations is None else list(relations)
        if chosen.percolation and not relations:
            warnings.warn(f"DST {method}: no percolation relations found in this model's module names, so dead "
                          f"neurons will not percolate; pass relations=[Chain(...), SamePosition(...)] "
                          f"(sparsenet.evolution) or percolation=False", stacklevel=2)
        density = None if sparsity is None else 1.0 - sparsity
        self.engine = TopologyEngine(model, optimizer, chosen, schedule, density=density, relations=relations,
                                     seed=seed)
        self.steps = 0

    @property
    def method(self):
        return self.engine.method

    def step(self) -> dict | None:
        """Count one optimizer step; apply the topology update if one is due (its statistics, else None)."""
        self.steps += 1
        return self.engine.step(self.steps)

    def _shapes(self) -> dict:
        return {self.engine.names[layer]: [layer.out_features, layer.in_features] for layer in self.engine.layers}

    def state_dict(self) -> dict:
        """What resuming needs besides the model's and optimizer's state dicts (``shapes``: each sparse layer's
        ``[out, in]`` by name, checked on load)."""
        return {"steps": self.steps, "engine": self.engine.state_dict(), "shapes": self._shapes()}

    def load_state_dict(self, state: dict) -> None:
        """Load ``state_dict()``'s output; ``ValueError`` (one line naming the first mismatching layer) if it is
        not a DST state of a model with these sparse layers (names, and shapes where the state records them)."""
        if not isinstance(state, dict) or not {"steps", "engine"} <= set(state) \
                or not isinstance(state["engine"], dict) or "history" not in state["engine"]:
            raise ValueError(f"not a DST state (DST.state_dict()'s output): got "
                             f"{sorted(state) if isinstance(state, dict) else type(state).__name__}")
        if not _is_int(state["steps"]) or state["steps"] < 0:
            raise ValueError(f"the DST state's steps must be an int >= 0, got {state['steps']!r}")
        shapes = self._shapes()
        saved = state.get("shapes") or {name: None for name in state["engine"].get("layers", shapes)}
        unmatched = [n for n in saved if n not in shapes] + [n for n in shapes if n not in saved]
        if unmatched:
            name, where, other = ((unmatched[0], "the state's", "model") if unmatched[0] in saved
                                  else (unmatched[0], "this model's", "state"))
            raise ValueError(f"the DST state does not fit this model: {where} sparse layer {name!r} is not in the "
                             f"{other} (state: {len(saved)} sparse layers, model: {len(shapes)})")
        for name, shape in saved.items():
            if shape is not None and list(shape) != shapes[name]:
                raise ValueError(f"the DST state does not fit this model: sparse layer {name!r} is "
                                 f"{shape[0]}x{shape[1]} in the state, {shapes[name][0]}x{shapes[name][1]} here")
        self.steps = state["steps"]
        self.engine.load_state_dict(state["engine"])
