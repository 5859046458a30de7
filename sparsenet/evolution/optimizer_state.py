"""Carry per-link optimizer state (momentum, Adam moments) across a topology change."""
import torch


def remap_positions(old_keys: torch.Tensor, new_keys: torch.Tensor) -> torch.Tensor:
    """``(len(old),)`` int64: position of every old key in the sorted ``new_keys``, or -1 if gone."""
    if new_keys.numel() == 0:
        return torch.full_like(old_keys, -1)
    position = torch.searchsorted(new_keys, old_keys).clamp(max=new_keys.numel() - 1)
    return torch.where(new_keys[position] == old_keys, position, torch.full_like(position, -1))


def remap_optimizer_state(optimizers, parameter: torch.nn.Parameter, old_to_new: torch.Tensor, nnz: int) -> None:
    """Move every state tensor of ``parameter`` to the new link order; new links start at zero.

    Works for any optimizer whose per-parameter state tensors have the parameter's shape (SGD momentum,
    Adam/AdamW moments, ...); scalar entries such as Adam's ``step`` are kept. Anything else raises
    ``TypeError`` naming the optimizer.
    """
    kept = old_to_new >= 0
    for optimizer in optimizers:
        state = optimizer.state.get(parameter)
        if not state:
            continue
        for name, value in state.items():
            if not torch.is_tensor(value) or value.dim() == 0:
                continue
            if value.shape != old_to_new.shape:
                raise TypeError(f"{type(optimizer).__name__} keeps state {name!r} of shape {tuple(value.shape)} "
                                f"for a sparse layer of {old_to_new.numel()} links; sparsenet can only remap "
                                f"per-link state of the parameter's shape")
            moved = value.new_zeros(nnz)
            moved[old_to_new[kept]] = value[kept]
            state[name] = moved
