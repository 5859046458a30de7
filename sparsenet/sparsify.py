"""Bring your own model: ``sparsify`` swaps a model's ``nn.Linear`` modules for ``SparseLinear`` in place,
``densify`` turns them back into ``nn.Linear`` (export).

A freshly built model gets new topologies (``init``: a topology initialiser) and new values (``weights``);
a trained one can keep its own values on its largest-magnitude links (``keep="magnitude"``: one-shot
magnitude pruning straight into sparse storage, never a dense mask) or on random links (``keep="random"``).
Create the optimizer after ``sparsify``: the replaced modules' parameters are new objects.

Besides ``nn.Linear``, Hugging Face's ``Conv1D`` (GPT-2 family: weight stored ``(in, out)``, ``y = x @ W + b``) is
the linear layer of its transposed weight and is replaced the same way (``densify`` gives a ``Conv1D`` back).
A module whose parameter is shared with another module (a ``lm_head`` tied to the input embedding) is refused:
replacing it would untie them without a word.
"""
import fnmatch
from dataclasses import dataclass

import torch
from torch import nn

from .evolution.selection import StreamingTopK, priorities
from .sparse import SparseLinear, keys_to_indices, link_count, sample_keys
from .topology import INITIALIZERS, WEIGHT_INITS, init_values, layer_densities, make_topology
from .topology.registry import OPTIONS

KEEP_RULES = (None, "magnitude", "random")
MAGNITUDE_BLOCK_ELEMENTS = 1 << 22  # weights keep="magnitude" reads per block: 32 MiB as float64


@dataclass(frozen=True)
class SparsifiedModule:
    """One replaced module: qualified ``name``, ``shape (out, in)``, ``links``, and bytes of its weight and
    bias before (dense) and after (values, CSR structure and bias)."""
    name: str
    shape: tuple[int, int]
    links: int
    bytes_before: int
    bytes_after: int


@dataclass(frozen=True)
class SparsifyReport:
    """What ``sparsify`` replaced, in module order; ``str()`` is a table."""
    modules: tuple[SparsifiedModule, ...]

    @property
    def bytes_before(self) -> int:
        return sum(m.bytes_before for m in self.modules)

    @property
    def bytes_after(self) -> int:
        return sum(m.bytes_after for m in self.modules)

    def __str__(self) -> str:
        width = max([len("module")] + [len(m.name) for m in self.modules])
        lines = [f"{'module':<{width}}  {'shape':>11}  {'links':>11}  {'density':>7}  {'bytes dense':>12}  "
                 f"{'bytes sparse':>12}"]
        for m in self.modules:
            shape = f"{m.shape[0]}x{m.shape[1]}"
            density = m.links / (m.shape[0] * m.shape[1])
            lines.append(f"{m.name:<{width}}  {shape:>11}  {m.links:>11,}  {density:>7.2%}  {m.bytes_before:>12,}  "
                         f"{m.bytes_after:>12,}")
        lines.append(f"{'total':<{width}}  {'':>11}  {sum(m.links for m in self.modules):>11,}  {'':>7}  "
                     f"{self.bytes_before:>12,}  {self.bytes_after:>12,}")
        return "\n".join(lines)


def _patterns(name: str, value) -> tuple[str, ...]:
    patterns = (value,) if isinstance(value, str) else tuple(value)
    if not all(isinstance(p, str) and p for p in patterns):
        raise ValueError(f"{name} must be module-name globs (strings), got {value!r}")
    return patterns


def is_conv1d(module: nn.Module) -> bool:
    """Whether ``module`` is Hugging Face's ``Conv1D`` (``transformers.pytorch_utils``), told by its class so that
    transformers need not be installed."""
    return type(module).__name__ == "Conv1D" and type(module).__module__.startswith("transformers.")


def is_linear(module: nn.Module) -> bool:
    """Whether ``sparsify`` can replace ``module``: exactly ``nn.Linear`` (subclasses such as
    ``nn.MultiheadAttention``'s projection read their weight directly) or Hugging Face's ``Conv1D``."""
    return type(module) is nn.Linear or is_conv1d(module)


def linear_weight(module: nn.Module) -> torch.Tensor:
    """The weight of a linear ``module`` as ``(out, in)``: ``nn.Linear``'s own, ``Conv1D``'s transposed (a view)."""
    return module.weight.t() if is_conv1d(module) else module.weight


def _storage_keys(parameter: torch.Tensor) -> list[tuple]:
    """What makes two parameters one: the same tensor, or (off the meta device) the same storage."""
    keys = [("tensor", id(parameter))]
    if parameter.device.type != "meta" and parameter.numel():
        keys.append(("storage", parameter.device, parameter.untyped_storage().data_ptr()))
    return keys


def _shared_parameters(model: nn.Module, chosen: list[tuple[str, nn.Module]]) -> None:
    """``ValueError`` (one line naming both) if a parameter of a chosen module is also a parameter of another
    module of ``model`` (the same tensor, or a view of its storage), or the module is registered twice."""
    owners = {}
    for name, module in model.named_modules(remove_duplicate=False):
        for parameter in module._parameters.values():
            if parameter is not None:
                for key in _storage_keys(parameter):
                    owners.setdefault(key, []).append(name)
    for name, module in chosen:
        for parameter_name, parameter in module.named_parameters(recurse=False):
            others = [other for key in _storage_keys(parameter) for other in owners[key] if other != name]
            if others:
                raise ValueError(f"{name}.{parameter_name} is shared with the module {others[0]!r} (tied weights): "
                                 f"sparsifying {name!r} would untie them; exclude it (exclude=[{name!r}]) or untie "
                                 f"them first (module.{parameter_name} = nn.Parameter(module.{parameter_name}.detach()"
                                 f".clone()) for module {name!r}; for Hugging Face also config.tie_word_embeddings = "
                                 f"False)")


def select_linears(model: nn.Module, include=("*",), exclude=()) -> list[tuple[str, nn.Module]]:
    """The linear modules (``is_linear``: ``nn.Linear`` or Hugging Face's ``Conv1D``) whose qualified names match
    a glob of ``include`` and none of ``exclude``. ``ValueError`` (one line) if a glob matches no linear module,
    nothing is selected, or a selected module shares a parameter with another module."""
    include, exclude = _patterns("include", include), _patterns("exclude", exclude)
    if is_linear(model):
        kind = "nn.Linear" if type(model) is nn.Linear else type(model).__name__
        raise ValueError(f"the model itself is an {kind}: sparsify a module that holds it, or build a SparseLinear "
                         f"directly")
    linears = [(name, m) for name, m in model.named_modules() if is_linear(m)]
    names = [name for name, _ in linears]
    for kind, patterns in (("include", include), ("exclude", exclude)):
        for pattern in patterns:
            if not fnmatch.filter(names, pattern):
                shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "") if names else "none"
                raise ValueError(f"{kind} glob {pattern!r} matches no nn.Linear or Conv1D of the model (its linear "
                                 f"modules: {shown})")
    chosen = [(name, m) for name, m in linears if any(fnmatch.fnmatchcase(name, p) for p in include)
              and not any(fnmatch.fnmatchcase(name, p) for p in exclude)]
    if not chosen:
        raise ValueError("include and exclude leave no nn.Linear or Conv1D to sparsify")
    _shared_parameters(model, chosen)
    return chosen


def _largest_links(weight: torch.Tensor, nnz: int, generator) -> torch.Tensor:
    """Sorted linear keys ``(nnz,)`` of the ``nnz`` largest-magnitude entries of ``weight (out, in)``, ties
    (exact zeros of a pruned model, say) broken at random. Read in row blocks of at most
    ``MAGNITUDE_BLOCK_ELEMENTS`` (no temporary of the weight's size) and chosen by ``StreamingTopK`` (up to
    2·nnz candidates, a float64 priority and an int64 key each). The random tie-break makes this slower than
    one ``topk`` of ``|W|``: a 4096 x 8192 weight took 7.8 s at 90% sparsity and 24 s at 50% on one busy
    core (one-off, at conversion)."""
    out_features, in_features = weight.shape
    rows = max(1, MAGNITUDE_BLOCK_ELEMENTS // in_features)
    largest = StreamingTopK(nnz, weight.device)
    for start in range(0, out_features, rows):
        block = priorities(weight[start:start + rows].detach().abs().flatten(), False, generator)
        largest.push(block, start * in_features + torch.arange(block.numel(), device=weight.device))
    return largest.keys.sort().values


def _kept_links(weight: torch.Tensor, nnz: int, keep: str, generator) -> torch.Tensor:
    """Sorted linear keys ``(nnz,)`` of the links to keep from a trained dense ``weight``."""
    if keep == "magnitude":
        return _largest_links(weight, nnz, generator)
    return sample_keys(weight.numel(), nnz, generator, weight.device)


def _replace(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


@torch.no_grad()
def sparsify(model: nn.Module, sparsity: float, include=("*",), exclude=(), init: str = "er",
             weights: str = "kaiming", distribution: str = "uniform", keep: str | None = None,
             generator: torch.Generator | None = None, **init_options) -> SparsifyReport:
    """Replace the selected ``nn.Linear`` (and Hugging Face ``Conv1D``) modules of ``model`` by ``SparseLinear``
    in place (see the module docstring); bias, dtype and device are kept.

    sparsity: share of absent links, in (0, 1); ``distribution`` spreads it over the modules (``uniform``:
    every module at ``1 - sparsity``; ``erk``: RigL's Erdős–Rényi-Kernel, same total). include / exclude:
    globs over qualified module names (``"*.mlp.*"``, ``"lm_head"``). init: topology initialiser (er, bsw,
    bsf, brf, csti; ``init_options`` such as ``beta`` are passed on) and weights: value initialiser (swi,
    kaiming, xavier, zeros), both for ``keep=None``. keep: ``"magnitude"`` or ``"random"`` keeps the
    module's trained values on those links instead. Raises ``ValueError`` (one line) for a bad argument,
    before any module is replaced, also for a selected module whose weight is tied to another module's.
    """
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)) or not 0.0 < sparsity < 1.0:
        raise ValueError(f"sparsity must be a number in (0, 1), got {sparsity!r}")
    if keep not in KEEP_RULES:
        raise ValueError(f"unknown keep rule {keep!r}; choose from {list(KEEP_RULES)}")
    chosen = select_linears(model, include, exclude)
    densities = layer_densities([tuple(linear_weight(m).shape) for _, m in chosen], 1.0 - sparsity, distribution)
    if keep is None and init not in INITIALIZERS:
        raise ValueError(f"unknown init {init!r}; choose from {sorted(INITIALIZERS)}")
    if keep is None and weights not in WEIGHT_INITS:
        raise ValueError(f"unknown weights {weights!r}; choose from {sorted(WEIGHT_INITS)}")
    if set(init_options) - OPTIONS:
        raise ValueError(f"unknown init options {sorted(set(init_options) - OPTIONS)}; valid: {sorted(OPTIONS)}")
    report = []
    for (name, linear), density in zip(chosen, densities):
        weight = linear_weight(linear)
        out_features, in_features = weight.shape
        nnz = link_count(out_features, in_features, density)
        if keep is None:
            indices = make_topology(init, out_features, in_features, density, generator, **init_options)
        else:
            keys = _kept_links(weight, nnz, keep, generator)
            indices = keys_to_indices(keys, in_features)
        sparse = SparseLinear(in_features, out_features, bias=linear.bias is not None, indices=indices,
                              device=weight.device, dtype=weight.dtype)
        if is_conv1d(linear):
            sparse.dense_class = type(linear)  # densify builds this class again
        if keep is None:
            init_values(sparse, weights, generator)
        else:
            sparse.values.copy_(weight[indices[0], indices[1]])
        if linear.bias is not None:
            sparse.bias.copy_(linear.bias)
        sparse.train(linear.training)
        before = sum(p.numel() * p.element_size() for p in linear.parameters())
        report.append(SparsifiedModule(name, (out_features, in_features), sparse.nnz, before,
                                       sparse.memory_bytes()["total"]))
        _replace(model, name, sparse)
    return SparsifyReport(tuple(report))


@torch.no_grad()
def densify(model: nn.Module) -> nn.Module:
    """Replace every ``SparseLinear`` of ``model`` by an ``nn.Linear`` with the same weight (zeros where no
    link), bias, dtype and device, in place (for export: ``save_pretrained``, ONNX, plain PyTorch); one that
    ``sparsify`` made from a Hugging Face ``Conv1D`` becomes a ``Conv1D`` again (weight stored ``(in, out)``).
    Returns ``model``."""
    for name, sparse in [(n, m) for n, m in model.named_modules() if isinstance(m, SparseLinear)]:
        dense_class = getattr(sparse, "dense_class", None)
        if dense_class is None:
            linear = nn.Linear(sparse.in_features, sparse.out_features, bias=sparse.bias is not None,
                               device=sparse.values.device, dtype=sparse.values.dtype)
            linear.weight.copy_(sparse.to_dense())
        else:
            linear = dense_class(sparse.out_features, sparse.in_features).to(sparse.values.device, sparse.values.dtype)
            linear.weight.copy_(sparse.to_dense().t())
        if sparse.bias is not None:
            linear.bias.copy_(sparse.bias)
        linear.train(sparse.training)
        _replace(model, name, linear)
    return model
