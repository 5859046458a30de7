"""What a DST topology update costs beside training, on a Hugging Face ``LlamaForCausalLM`` made sparse by
``sparsenet.sparsify``, in one process (issue 15's target: < 5% of the training time per update interval).

Model: the sizes of ``cli.py train --model lm`` (6 layers, hidden 320, SwiGLU 864, 5 heads, vocabulary
8,000), built from a config (no download); its 42 q/k/v/o and gate/up/down projections sparsified
(CHTs: BRF topology with SWI values, the recipe's; SET and RigL: ER with Kaiming values; CHTss at its 50%
starting density, where its updates are largest). One training step: forward, loss, backward, AdamW step on
``batch`` random windows of ``context`` tokens (the recipe's 16 × 128). One update: ``DST.step()`` due at
every call (``update_interval=1``), timed after an untimed backward (RigL reads the gradient), on the CPU.
The overhead column is one update against ``interval`` training steps (the recipe updates every 100).

A method is a name with optional ``DST`` method options after a colon, e.g. ``chts:regrowth=ch2_l3n_soft``
(the LM recipe's CHTs: node-based CH2-L3n, the CHTss paper's LLaMA setting, instead of the registered
path-based CH3-L3p).

    python -m benchmarks.hf_dst_overhead [--sparsity 0.9] [--methods chts set ...] [--interval 100]
"""
import argparse
import statistics
import time
from dataclasses import dataclass

import torch

import sparsenet
from benchmarks.timing import cpu_model, median_ms
from sparsenet.runtime import tune_cpu_allocator

LM_SIZES = dict(vocab_size=8000, hidden_size=320, intermediate_size=864, num_hidden_layers=6,
                num_attention_heads=5, num_key_value_heads=5, max_position_embeddings=128)
METHOD_INIT = {"chts": dict(init="brf", weights="swi"), "chtss": dict(init="brf", weights="swi")}
METHODS = ["chts", "chts:regrowth=ch2_l3n_soft", "set", "rigl", "chtss"]


def parse_method(spec: str) -> tuple[str, dict]:
    """``"chts:regrowth=ch2_l3n_soft,removal=wm"`` -> ``("chts", {"regrowth": "ch2_l3n_soft", "removal": "wm"})``
    (values are strings: the name-valued options)."""
    name, _, options = spec.partition(":")
    pairs = [option.split("=", 1) for option in options.split(",") if option]
    if any(len(pair) != 2 for pair in pairs):
        raise ValueError(f"method {spec!r}: options are name=value pairs separated by commas")
    return name, dict(pairs)


@dataclass(frozen=True)
class OverheadRow:
    """One method: median ms of a training step and of one topology update, and the links it updates."""
    method: str
    links: int
    step_ms: float
    update_ms: float

    def overhead(self, interval: int) -> float:
        return self.update_ms / (interval * self.step_ms)


def measure(spec: str, sparsity: float, batch: int, context: int, repeats: int, sizes: dict = LM_SIZES,
            seed: int = 0) -> OverheadRow:
    """Build, sparsify and time one method ``spec`` (see the module docstring)."""
    from transformers import LlamaConfig, LlamaForCausalLM
    method, options = parse_method(spec)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(**sizes))
    generator = torch.Generator().manual_seed(seed)
    sparsenet.sparsify(model, sparsenet.start_sparsity(method, sparsity), include=("*_proj",),
                       generator=generator, **METHOD_INIT.get(method, {}))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    tokens = torch.randint(0, sizes["vocab_size"], (batch, context), generator=generator)

    def backward():
        optimizer.zero_grad()
        model(input_ids=tokens, labels=tokens).loss.backward()

    def train_step():
        backward()
        optimizer.step()

    step_ms = median_ms(train_step, repeats=repeats, warmup=2)
    dst = sparsenet.DST(model, optimizer, method, total_steps=1_000_000, update_interval=1, sparsity=sparsity,
                        seed=seed, **options)
    seconds = []
    for _ in range(repeats + 1):  # the first update is warm-up
        backward()
        start = time.perf_counter()
        if dst.step() is None:
            raise RuntimeError(f"{method}: DST made no update at a due step")
        seconds.append(time.perf_counter() - start)
    links = sum(m.nnz for m in model.modules() if isinstance(m, sparsenet.SparseLinear))
    return OverheadRow(spec, links, step_ms, statistics.median(seconds[1:]) * 1e3)


def table(rows: list[OverheadRow], interval: int) -> str:
    lines = [f"| method | links after the updates | step ms | update ms | update / {interval} steps |",
             "|---|---:|---:|---:|---:|"]
    lines += [f"| {r.method} | {r.links:,} | {r.step_ms:.0f} | {r.update_ms:.0f} | {r.overhead(interval):.2%} |"
              for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sparsity", type=float, default=0.9, help="final sparsity of the projections")
    parser.add_argument("--methods", nargs="+", default=METHODS,
                        help="method names, each with optional options after a colon (module docstring)")
    parser.add_argument("--interval", type=int, default=100, help="training steps per topology update")
    parser.add_argument("--batch", type=int, default=16, help="windows per training step")
    parser.add_argument("--context", type=int, default=128, help="tokens per window")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps and updates (medians)")
    args = parser.parse_args()
    tune_cpu_allocator()
    print(f"{cpu_model()}, {torch.get_num_threads()} threads, torch {torch.__version__}, LLaMA-style "
          f"{LM_SIZES['num_hidden_layers']} layers, hidden {LM_SIZES['hidden_size']}, projections at "
          f"{args.sparsity:g} sparsity, batch {args.batch} x {args.context} tokens")
    print(table([measure(m, args.sparsity, args.batch, args.context, args.repeats) for m in args.methods],
                args.interval))


if __name__ == "__main__":
    main()
