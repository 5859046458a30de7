"""What one training forward of the paper-size IWSLT14 Transformer saves for backward, dense vs sparse.

Bytes of the distinct storages autograd saves (``torch.autograd.graph.saved_tensors_hooks``), parameters
left out: the activations kept for backward, without the step's temporaries. The model and batch are those
of ``benchmarks.transformer_step`` (16 × 32 + 16 × 32 tokens, ER topology). Inside the model's
``shared_inputs()`` block, Q/K/V of one input and the decoder's K/V of the encoder memory share one saved
feature-major copy; ``--unshared`` turns the sharing off to show what it saves.

    python -m benchmarks.saved_activations [--sparsities 0 0.9 0.99] [--unshared]
"""
import argparse
import contextlib

import torch

from sparsenet.experiments.training_memory import batch_loss, build_transformer, random_batch

MIB = 2**20


def saved_bytes(forward, parameters) -> int:
    """Bytes of the distinct storages autograd saves for backward while ``forward()`` runs, leaving out
    those of ``parameters`` (an iterable of tensors)."""
    skip = {p.untyped_storage().data_ptr() for p in parameters}
    storages = {}

    def pack(tensor):
        if tensor.layout == torch.strided:
            storages.setdefault(tensor.untyped_storage().data_ptr(), tensor.untyped_storage().nbytes())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        forward()
    return sum(size for pointer, size in storages.items() if pointer not in skip)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sparsities", type=float, nargs="+", default=[0.0, 0.9, 0.99], help="sparsities in [0, 1)")
    parser.add_argument("--unshared", action="store_true", help="turn the projections' input sharing off")
    args = parser.parse_args(argv)
    if not all(0 <= s < 1 for s in args.sparsities):
        parser.error(f"--sparsities must be in [0, 1), got {args.sparsities}")
    if args.unshared:
        from sparsenet.models import transformer
        transformer.shared_inputs = contextlib.nullcontext
    print("| sparsity | saved for backward MiB |\n|---:|---:|")
    for sparsity in args.sparsities:
        model = build_transformer(sparsity).train()
        torch.manual_seed(0)  # the same dropout draws for every model
        batch = random_batch(model, 16, 32)
        saved = saved_bytes(lambda: batch_loss(model, batch), model.parameters())
        print(f"| {sparsity:g} | {saved / MIB:.1f} |", flush=True)


if __name__ == "__main__":
    main()
