"""Count the operations that force a device-to-host synchronisation on CUDA, on any device.

On a GPU each of these waits for every queued kernel to finish (10-20 µs plus a pipeline drain), so the
hot paths (a training step, a topology update, a decoding step) must make O(1) or O(layers) of them, never one
per row or per sentence. ``SyncCounter`` sees them on the CPU too, so the rule is tested on machines without a
GPU::

    with SyncCounter() as syncs:
        engine.step(step)
    assert syncs.count <= 300, syncs.by_op

Counted: ``.item()`` / ``float()`` / ``int()`` / ``bool()`` of a tensor (``aten._local_scalar_dense``),
``nonzero`` / ``argwhere`` / one-argument ``where``, boolean-mask indexing and ``masked_select``, ``unique*``,
``bincount``, ``repeat_interleave`` without ``output_size``, ``equal`` / ``is_nonzero``, and the Python-level
``Tensor.tolist()`` and ``Tensor.numpy()`` (which copy to the host without an aten op on CPU tensors)."""
from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten

SYNCING_OPS = {
    aten._local_scalar_dense.default, aten.nonzero.default, aten.masked_select.default, aten.bincount.default,
    aten._unique.default, aten._unique2.default, aten.unique_dim.default, aten.unique_consecutive.default,
    aten.equal.default, aten.is_nonzero.default,
}


def _name(func) -> str:
    return func.__name__ if hasattr(func, "__name__") else str(func)


class SyncCounter(TorchDispatchMode):
    """A dispatch mode that counts sync-forcing calls: ``count`` in all, ``by_op`` per operation name."""

    def __init__(self):
        super().__init__()
        self.by_op: Counter = Counter()
        self._patched: dict = {}

    @property
    def count(self) -> int:
        return sum(self.by_op.values())

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in SYNCING_OPS:
            self.by_op[_name(func)] += 1
        elif func.overloadpacket in (aten.index, aten.index_put, aten.index_put_) and _has_bool_index(args):
            self.by_op[f"{_name(func)}(bool mask)"] += 1
        elif func is aten.repeat_interleave.Tensor and kwargs.get("output_size") is None:
            self.by_op[f"{_name(func)}(no output_size)"] += 1
        return func(*args, **kwargs)

    def __enter__(self):
        for method in ("tolist", "numpy"):
            original = getattr(torch.Tensor, method)
            self._patched[method] = original

            def counted(tensor, *args, _original=original, _method=method, **kwargs):
                self.by_op[f"Tensor.{_method}"] += 1
                return _original(tensor, *args, **kwargs)
            setattr(torch.Tensor, method, counted)
        return super().__enter__()

    def __exit__(self, *exc):
        for method, original in self._patched.items():
            setattr(torch.Tensor, method, original)
        self._patched.clear()
        return super().__exit__(*exc)


def _has_bool_index(args) -> bool:
    """Whether an ``index``/``index_put`` call's index list holds a boolean mask (which becomes a ``nonzero``)."""
    indices = args[1] if len(args) > 1 else ()
    return any(isinstance(index, torch.Tensor) and index.dtype == torch.bool for index in indices or ())
