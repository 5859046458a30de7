"""Percolation relations of a user's model, found from its module names (``find_relations``).

A relation tells percolation (sparsenet/evolution/percolation.py) which neurons of one ``SparseLinear`` are
useless when another has lost theirs. Found here, for every pair of sparse modules under one parent:
  attention   q/k at the same position (their rows meet in q·k); v feeds o (v's outputs are o's inputs):
              LLaMA/Mistral/OPT (q_proj, k_proj, v_proj, o_proj | out_proj), T5 (q, k, v, o),
              BERT (self.query, self.key, self.value, output.dense);
  MLP         up (and gate) feed down, gate/up at the same position (SwiGLU multiplies them):
              LLaMA (gate_proj, up_proj, down_proj), Meta's LLaMA (w1, w3, w2), OPT/ViT/CLIP (fc1, fc2),
              GPT-NeoX (dense_h_to_4h, dense_4h_to_h), GPT-2 (mlp.c_fc, mlp.c_proj),
              BERT (intermediate.dense, output.dense);
  Sequential  consecutive sparse modules of an ``nn.Sequential`` with only parameter-free modules
              (activations, dropout) between them form a chain.
A pair whose shapes do not connect (grouped-query attention's k/v, for instance) is skipped.
A fused projection gets no attention relation, as a relation joins whole modules: GPT-NeoX's
query_key_value interleaves q, k and v by head, GPT-2's attn.c_attn stacks them (outputs [0, d), [d, 2d),
[2d, 3d)). So GPT-2's attn.c_attn and attn.c_proj are left out of percolation; its MLP chain is found.
"""
from torch import nn

from .evolution.percolation import Chain, SamePosition
from .sparse import SparseLinear

NAMED_RELATIONS = (  # (relation, first suffix, second suffix) under a common prefix
    (SamePosition, "q_proj", "k_proj"), (Chain, "v_proj", "o_proj"), (Chain, "v_proj", "out_proj"),
    (SamePosition, "q", "k"), (Chain, "v", "o"),
    (SamePosition, "self.query", "self.key"), (Chain, "self.value", "output.dense"),
    (SamePosition, "gate_proj", "up_proj"), (Chain, "gate_proj", "down_proj"), (Chain, "up_proj", "down_proj"),
    (SamePosition, "w1", "w3"), (Chain, "w1", "w2"), (Chain, "w3", "w2"),
    (Chain, "fc1", "fc2"), (Chain, "dense_h_to_4h", "dense_4h_to_h"), (Chain, "mlp.c_fc", "mlp.c_proj"),
    (Chain, "intermediate.dense", "output.dense"),
)


def _connects(relation, first: SparseLinear, second: SparseLinear) -> bool:
    if relation is Chain:
        return first.out_features == second.in_features
    return first.out_features == second.out_features


def _sequential_chains(model: nn.Module) -> list[Chain]:
    chains = []

    def close(run: list) -> list:
        if len(run) > 1:
            chains.append(Chain(tuple(run)))
        return []

    for container in (m for m in model.modules() if isinstance(m, nn.Sequential)):
        run = []
        for child in container.children():
            if isinstance(child, SparseLinear):
                if run and run[-1].out_features != child.in_features:
                    run = close(run)
                run.append(child)
            elif any(True for _ in child.parameters()):  # a module with parameters (a norm, a dense layer) ends it
                run = close(run)
        close(run)
    return chains


def find_relations(model: nn.Module) -> list:
    """The percolation relations of ``model``: its own ``percolation_relations()`` if it has one (sparsenet's
    MLP and Transformer), else those found by the rules of the module docstring, in module order."""
    if hasattr(model, "percolation_relations"):
        return list(model.percolation_relations())
    sparse = {name: m for name, m in model.named_modules() if isinstance(m, SparseLinear)}
    relations = []
    for name, module in sparse.items():
        for relation, first, second in NAMED_RELATIONS:
            if name == first or name.endswith("." + first):
                other = sparse.get(name[:len(name) - len(first)] + second)
                if other is not None and _connects(relation, module, other):
                    relations.append(Chain((module, other)) if relation is Chain else SamePosition(module, other))
    return relations + _sequential_chains(model)
