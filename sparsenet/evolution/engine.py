"""``TopologyEngine``: applies a DST method's topology updates to a model during training.

Call ``engine.step(global_step)`` after ``optimizer.step()`` and before ``zero_grad()`` (MEST reads the
current gradient, RigL the current batch's activations). When an update is due it:
  1. scores every sparse layer's links by the method's removal rule (``removal.REMOVALS``) and keeps
     ``n - ⌊ζ n⌋`` (hard, soft, or per sign), after first
     pruning to the density schedule's target when that shrinks (CHTss by RI); with MEST's ``excess``
     turnover it instead prunes to the final density and regrows to the elastic target;
  2. percolates dead neurons over the model's declared relations (``model.percolation_relations()``);
  3. removes the dropped links and regrows as many (or to the density target) by the method's regrowth;
  4. moves every optimizer's per-link state to the new order: a link present before and after the update
     keeps its value and state, also when it was removed and regrown in the same update (as the authors'
     mask code, where new-link handling applies only where the old mask was 0); new links start at zero;
     CHT's early stop flags a layer once removed∩regrown / regrown exceeds the threshold (the flag stays)
     and stops every layer's evolution once all layers are flagged;
  5. under torch.distributed: checks that every rank holds the same links (a SHA-256 digest of each layer's
     CSR, compared before and after the update; ``check_ranks``), decides the update on rank 0 alone, RigL
     from the activations of every rank's part of the batch, and broadcasts the new links, values and the
     early-stop flags; the other ranks move their optimizer state by key, as rank 0 did;
  6. returns statistics (with ``topology_hash``, a digest of every layer's links); ``state_dict()`` /
     ``load_state_dict()`` hold what resuming needs, keyed by the sparse modules' names.
Regrowth asks the method's regrowth rule (``regrowth.REGROWTHS``) for score blocks, giving it what the rule says
it needs (the captured inputs and output gradients for RigL's); the engine never branches on a rule's name.
"""
import hashlib
import time

import torch
from torch import distributed as dist
from torch import nn

from ..sparse import keys_to_indices, link_count, linear_keys
from ..sparse.csr import expand
from ..topology.measures import active_neuron_rate, overlap
from ..topology.plan import sparse_layers
from .linkpred import DEFAULT_BUDGET
from .methods import Method
from .optimizer_state import remap_optimizer_state, remap_positions
from .percolation import Chain, percolate
from .regrowth import REGROWTHS
from .removal import REMOVALS
from .schedule import DensitySchedule, Schedule
from .selection import keep_mask, keep_per_sign, select_absent


class TopologyEngine:
    """Topology updates for every ``SparseLinear`` of ``model``.

    optimizers: one optimizer or a list (all get their state remapped). method: a ``Method``.
    schedule: a ``Schedule``. density: final density of the sparse layers, one float for all or one per
    layer (default: each layer's current density; with a decaying density schedule the model should
    start at ``DensitySchedule.start()``).
    relations: percolation relations (default ``model.percolation_relations()`` if the model has it).
    seed: seeds the engine's own generator (its state is saved).
    check_ranks: under torch.distributed, stop with ``RuntimeError`` when the ranks' links differ before or
    after an update (on by default; costs a digest of each layer's links per update).
    """

    def __init__(self, model: nn.Module, optimizers, method: Method, schedule: Schedule,
                 density: float | list[float] | None = None,
                 relations=None, seed: int = 0, memory_budget: int = DEFAULT_BUDGET, check_ranks: bool = True):
        self.layers = sparse_layers(model)
        named = {}
        for name, module in model.named_modules():
            named.setdefault(module, name)
        self.names = {layer: named[layer] for layer in self.layers}  # state is keyed by module name
        self.optimizers = list(optimizers) if isinstance(optimizers, (list, tuple)) else [optimizers]
        self.method = method.validate()
        self.schedule = schedule
        if relations is None:
            relations = model.percolation_relations() if hasattr(model, "percolation_relations") else []
        self.relations = list(relations) if method.percolation else []
        finals = ([l.density for l in self.layers] if density is None else list(density)
                  if isinstance(density, (list, tuple)) else [density] * len(self.layers))
        if len(finals) != len(self.layers):
            raise ValueError(f"density: {len(finals)} values for {len(self.layers)} sparse layers")
        self.density = {l: DensitySchedule(d, method.density_schedule) for l, d in zip(self.layers, finals)}
        if method.density_schedule != "constant" and schedule.last_update == 0:
            raise ValueError(f"method {method.name!r} decays the density, but no topology update fits before "
                             f"t_end = {schedule.end} (update interval {schedule.update_interval})")
        self.generator = torch.Generator().manual_seed(seed)
        self.memory_budget = memory_budget
        self.check_ranks = check_ranks
        self.stopped = False
        self.flagged = set()  # layers whose topology converged once (CHT's early stop; sticky)
        self.history = {self.names[l]: (torch.empty(0, dtype=torch.int64), torch.empty(0)) for l in self.layers}
        self._captured = {}
        dynamic = method.removal is not None
        self.removal = REMOVALS[method.removal_score] if dynamic else None
        self.prune = REMOVALS[method.prune_score or method.removal_score] if dynamic else None
        self.regrowth = REGROWTHS[method.regrowth_kind] if dynamic else None
        if dynamic and self.regrowth.preflight is not None:  # fail now, not after an epoch
            for layer in self.layers:
                rows, cols = layer.indices
                try:
                    self.regrowth.preflight(torch.bincount(rows, minlength=layer.out_features),
                                            torch.bincount(cols, minlength=layer.in_features), memory_budget)
                except ValueError as error:
                    raise ValueError(f"{self.regrowth.name} regrowth on the {layer.in_features}->"
                                     f"{layer.out_features} layer {self.names[layer]} {error}") from None
        if dynamic and self.regrowth.needs_activations:
            for layer in self.layers:
                layer.register_forward_hook(self._capture)

    def _capture(self, layer, inputs, output):
        if torch.is_grad_enabled() and output.requires_grad:
            x = inputs[0].detach()
            output.register_hook(lambda grad: self._captured.__setitem__(layer, (x, grad.detach())))

    def at_final_density(self, step: int) -> bool:
        """Whether the model evaluated after ``step`` optimizer steps (before that step's update) is at the
        final density: always for a constant density schedule, else once the last update is past. Model
        selection (best checkpoint, best accuracy) considers only such evaluations, as the authors do."""
        return self.method.density_schedule == "constant" or step > self.schedule.last_update

    def _target_nnz(self, layer, step: int) -> int:
        density = self.density[layer].at(self.schedule.progress(step))
        return link_count(layer.out_features, layer.in_features, density)

    def _keep_masks(self, step: int, targets: dict) -> dict:
        zeta, exponent = self.schedule.zeta_at(step), self.schedule.exponent_at(step)
        masks = {}
        for layer in self.layers:
            n = layer.nnz
            keep = torch.ones(n, dtype=torch.bool, device=layer.indices.device)
            floor = self._final_nnz(layer) if self.method.turnover == "excess" else targets[layer]
            excess = max(0, n - floor)
            if excess:  # density decay: prune to the target first (CHTss by RI, MEST by its own score)
                keep = keep_mask(self.prune.scores(layer, self.method), n - excess, soft=False,
                                 generator=self.generator)
            if self.method.turnover == "excess":
                masks[layer] = keep
                continue
            survivors = keep.nonzero().squeeze(1)
            scores = self.removal.scores(layer, self.method)[survivors]
            if self.removal.per_sign:
                chosen = keep_per_sign(layer.values.detach()[survivors], zeta, self.generator, scores)
            else:
                n_keep = survivors.numel() - int(zeta * survivors.numel())
                chosen = keep_mask(scores, n_keep, self.method.removal_soft, self.generator, exponent)
            keep = torch.zeros_like(keep)
            keep[survivors[chosen]] = True
            masks[layer] = keep
        return masks

    def _final_nnz(self, layer) -> int:
        return link_count(layer.out_features, layer.in_features, self.density[layer].final)

    def _regrowth_blocks(self, layer):
        """The regrowth rule's score blocks for ``layer``, given what the rule needs (none: random regrowth)."""
        if self.regrowth.blocks is None:
            return []
        needs = {}
        if self.regrowth.needs_activations:
            if layer not in self._captured:
                raise RuntimeError(f"{self.regrowth.name} regrowth needs a forward and backward pass before "
                                   f"engine.step()")
            needs = dict(zip(("inputs", "grad_outputs"), self._captured[layer]))
        return self.regrowth.blocks(layer, memory_budget=self.memory_budget, **needs)

    @torch.no_grad()
    def step(self, global_step: int) -> dict | None:
        """Apply an update if one is due at ``global_step``; return its statistics, else None."""
        if self.method.removal is None or self.stopped or not self.schedule.is_update(global_step):
            return None
        distributed = _distributed()
        if distributed and self.check_ranks:
            self._check_ranks(global_step, "before", self._digests())
        if distributed and self.regrowth.needs_activations:
            self._gather_captured()
        stats = self._update(global_step) if not distributed or dist.get_rank() == 0 else None
        if distributed:
            stats = self._adopt_rank_zero(stats)
        digests = self._digests()  # once: for the check and for the statistics' hash
        if distributed and self.check_ranks:
            self._check_ranks(global_step, "after", digests)
        self._captured.clear()
        return {**stats, "topology_hash": _combined(digests)}

    def _update(self, global_step: int) -> dict:
        start = time.perf_counter()
        targets = {layer: self._target_nnz(layer, global_step) for layer in self.layers}
        masks = percolate(self._keep_masks(global_step, targets), self.relations)
        per_layer = []
        for layer in self.layers:
            name, keep = self.names[layer], masks[layer]
            old_keys = linear_keys(layer.indices, layer.in_features)
            old_values = layer.values.detach().clone()
            removed = old_keys[~keep]
            self._remember(name, removed, layer.values[~keep])
            removal_map = layer.remove(keep)
            present = linear_keys(layer.indices, layer.in_features)
            count = max(0, targets[layer] - layer.nnz)
            total = layer.out_features * layer.in_features
            new_keys = select_absent(self._regrowth_blocks(layer), count, self.method.regrowth_soft, present, total,
                                     self.generator)
            kept_to_new, added_to_new = layer.insert(keys_to_indices(new_keys, layer.in_features),
                                                     self._initial_values(name, new_keys, layer))
            old_to_new = _compose(removal_map, kept_to_new, keep, remap_positions(removed, new_keys), added_to_new)
            regained = (old_to_new >= 0) & ~keep  # removed and regrown: keeps value and state
            layer.values.data[old_to_new[regained]] = old_values[regained]
            remap_optimizer_state(self.optimizers, layer.values, old_to_new, layer.nnz)
            per_layer.append({"nnz": layer.nnz, "removed": removed.numel(), "regrown": new_keys.numel(),
                              "overlap": overlap(removed, new_keys)})
        if self.method.early_stop is not None:
            self.flagged |= {layer for layer, s in zip(self.layers, per_layer)
                             if s["regrown"] and s["overlap"] > self.method.early_stop}
            self.stopped = len(self.flagged) == len(self.layers)
        regrown = sum(s["regrown"] for s in per_layer)
        return {"step": global_step, "nnz": sum(s["nnz"] for s in per_layer),
                "removed": sum(s["removed"] for s in per_layer), "regrown": regrown,
                "overlap": sum(s["overlap"] * s["regrown"] for s in per_layer) / max(1, regrown),
                "anp": self.active_neuron_rate(), "zeta": self.schedule.zeta_at(global_step),
                "stopped": self.stopped, "seconds": time.perf_counter() - start, "layers": per_layer}

    def topology_hash(self) -> str:
        """16 hex digits of a SHA-256 over every sparse layer's links (its CSR row pointers and columns)."""
        return _combined(self._digests())

    def _digests(self) -> list[bytes]:
        return [_layer_digest(layer) for layer in self.layers]

    def _check_ranks(self, global_step: int, when: str, digests: list[bytes]) -> None:
        """``RuntimeError`` on every rank when some rank's links (``digests``, one per layer) differ from rank
        0's in some layer."""
        mine = torch.tensor([int.from_bytes(digest[:8], "little", signed=True) for digest in digests])
        every = [torch.empty_like(mine) for _ in range(dist.get_world_size())]
        dist.all_gather(every, mine)
        for position in range(len(self.layers)):
            differ = [r for r, digests in enumerate(every) if digests[position] != every[0][position]]
            if differ:
                layer = self.layers[position]
                raise RuntimeError(f"the ranks' topologies differ {when} the update at step {global_step}: sparse "
                                   f"layer {position} ({layer.in_features}->{layer.out_features}) on rank(s) "
                                   f"{', '.join(map(str, differ))} is not rank 0's")

    def _gather_captured(self) -> None:
        """RigL: every rank's (inputs, output gradients) of each layer, concatenated along the batch, so rank 0
        scores the gradient of the whole global batch (the sum of the ranks' parts)."""
        for layer in self.layers:  # every rank gathers every layer, captured here or not (an empty part)
            x, grad = self._captured.get(layer, (layer.values.new_empty(0, layer.in_features),
                                                 layer.values.new_empty(0, layer.out_features)))
            self._captured[layer] = (_gather_rows(x.reshape(-1, layer.in_features)),
                                     _gather_rows(grad.reshape(-1, layer.out_features)))

    def _adopt_rank_zero(self, stats: dict | None) -> dict:
        """Broadcast rank 0's update (links, values, flags, statistics); the other ranks install it and move
        their optimizer state by key, as rank 0 did. Returns the statistics."""
        for layer in self.layers:
            size = torch.tensor([layer.nnz], dtype=torch.int64)
            dist.broadcast(size, src=0)
            mine = dist.get_rank() == 0
            crow = layer.crow if mine else layer.crow.new_empty(layer.out_features + 1)
            col = layer.col if mine else layer.col.new_empty(int(size[0]))
            values = layer.values.detach() if mine else layer.values.new_empty(int(size[0]))
            for tensor in (crow, col, values):
                dist.broadcast(tensor, src=0)
            if not mine:
                indices = expand(crow, col)
                old_to_new = remap_positions(linear_keys(layer.indices, layer.in_features),
                                             linear_keys(indices, layer.in_features))
                layer.set_topology(indices, values)
                remap_optimizer_state(self.optimizers, layer.values, old_to_new, layer.nnz)
        shared = [stats, sorted(self.layers.index(l) for l in self.flagged), self.stopped]
        dist.broadcast_object_list(shared, src=0)
        stats, flagged, self.stopped = shared
        self.flagged = {self.layers[i] for i in flagged}
        return stats

    def _remember(self, name: str, keys: torch.Tensor, values: torch.Tensor) -> None:
        if not self.method.historical_weights:
            return
        old_keys, old_values = self.history[name]
        keys_all = torch.cat((keys.cpu(), old_keys))
        values_all = torch.cat((values.detach().cpu(), old_values.to(values.dtype)))
        unique, first = _first_index(keys_all)
        self.history[name] = (unique, values_all[first])

    def _initial_values(self, name: str, new_keys: torch.Tensor, layer) -> torch.Tensor:
        values = layer.values.new_zeros(new_keys.numel())
        if self.method.historical_weights:
            keys, stored = self.history[name]
            where = remap_positions(new_keys.cpu(), keys)
            known = where >= 0
            values[known.to(values.device)] = stored[where[known]].to(values)
        return values

    def active_neuron_rate(self) -> float | None:
        """ANP over the neurons of the model's chains (None without declared chains)."""
        chains = [r for r in self.relations if isinstance(r, Chain)]
        if not chains:
            return None
        sizes, rates = [], []
        for chain in chains:
            shapes = [l.shape for l in chain.layers]
            sizes.append(shapes[0][1] + sum(s[0] for s in shapes))
            rates.append(active_neuron_rate([l.indices for l in chain.layers], shapes))
        return sum(s * r for s, r in zip(sizes, rates)) / sum(sizes)

    def state_dict(self) -> dict:
        """What resuming needs, keyed by the sparse modules' names (``layers``: their update order)."""
        return {"layers": [self.names[l] for l in self.layers], "stopped": self.stopped,
                "flagged": sorted(self.names[l] for l in self.flagged), "generator": self.generator.get_state(),
                "history": dict(self.history)}

    def load_state_dict(self, state: dict) -> None:
        """Load ``state_dict()``'s output, also into a model whose sparse modules are registered in another order
        (the updates then run in the saved order, so the run resumes exactly); states keyed by the layers'
        positions (older checkpoints) load into the modules at those positions."""
        by_name = {name: layer for layer, name in self.names.items()}
        order = state.get("layers", [self.names[l] for l in self.layers])
        if sorted(order) != sorted(by_name):
            raise ValueError(f"the engine state holds the sparse modules {sorted(order)}, this model "
                             f"{sorted(by_name)}")
        flagged = state.get("flagged", state.get("frozen", []))
        history = state["history"]
        if "layers" not in state:  # keyed by position
            flagged = [order[i] for i in flagged]
            history = {order[i]: entry for i, entry in history.items()}
        self.layers = [by_name[name] for name in order]
        self.stopped = state["stopped"]
        self.flagged = {by_name[name] for name in flagged}
        self.generator.set_state(state["generator"])
        self.history = dict(history)


def _compose(removal_map: torch.Tensor, kept_to_new: torch.Tensor, keep: torch.Tensor, regrown: torch.Tensor,
             added_to_new: torch.Tensor) -> torch.Tensor:
    """``(nnz_old,)`` each old link's position after an update, or -1, from the edits' maps: ``removal_map``
    (``remove``'s, old -> kept or -1), ``kept_to_new`` and ``added_to_new`` (``insert``'s), ``keep (nnz_old,)``
    bool, and ``regrown`` (each removed link's position among the added ones, or -1: removed and regrown)."""
    missing = kept_to_new.new_full((1,), -1)  # index -1 of the padded maps: gone
    old_to_new = torch.cat((kept_to_new, missing))[removal_map]
    old_to_new[~keep] = torch.cat((added_to_new, missing))[regrown]
    return old_to_new


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _layer_digest(layer) -> bytes:
    """SHA-256 of a layer's CSR row pointers and columns (on the CPU: an update's bookkeeping, not a hot path)."""
    digest = hashlib.sha256()
    for tensor in (layer.crow, layer.col):
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.digest()


def _combined(digests: list[bytes]) -> str:
    """16 hex digits of a SHA-256 over the layers' digests, in layer order."""
    return hashlib.sha256(b"".join(digests)).hexdigest()[:16]


def _gather_rows(rows: torch.Tensor) -> torch.Tensor:
    """``rows (n_r, f)`` of every rank concatenated in rank order (ranks may hold different ``n_r``)."""
    counts = [torch.zeros(1, dtype=torch.int64) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, torch.tensor([rows.shape[0]]))
    longest = int(max(counts))
    padded = torch.cat((rows, rows.new_zeros(longest - rows.shape[0], rows.shape[1])))
    every = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(every, padded)
    return torch.cat([part[:int(n)] for part, n in zip(every, counts)])


def _first_index(keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted unique keys and, for each, the index of its first occurrence in ``keys``."""
    unique, inverse = torch.unique(keys, return_inverse=True)
    first = torch.full((unique.numel(),), keys.numel(), dtype=torch.int64)
    first.scatter_reduce_(0, inverse, torch.arange(keys.numel()), reduce="amin")
    return unique, first
