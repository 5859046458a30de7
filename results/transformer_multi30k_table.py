"""Builds the table of results/transformer_multi30k.md from runs/transformer_multi30k (one seed per method).

Step seconds: the fastest 500-step interval between validations (the runs shared the machine, so the
total train seconds carry other jobs' load; the fastest interval is the least disturbed).
Bytes are counted tensor bytes of the trained model (``sparsenet.sparse.layer_memory`` on its best.pt):
parameters as stored (values; indices and CSR caches in their own column) and Adam's two moments.

    python results/transformer_multi30k_table.py [RUNS_DIR]
"""
import json
import sys
from pathlib import Path

import torch

from sparsenet.models import Transformer
from sparsenet.sparse import layer_memory

PAPER = {  # method.md §7.1 (CHTs preprint, Multi30k, full-size model) and §7.4 (NeurIPS Table 2, 90%)
    "fc": ("31.51", "31.38±0.38 (at 95%)"), "set": ("28.98", "29.73±0.10"), "rigl": ("28.52", "30.26±0.34"),
    "chts": ("29.97", "29.81±0.37"),
}
METHODS = ("fc", "set", "rigl", "chts")
COMMAND = ("python cli.py train --model transformer --dataset multi30k --preset cpu --method {method} "
           "--sparsity 0.9 --seed 0 --data_dir ../shared/data --out_dir runs/transformer_multi30k --wandb off --quiet")
MIB = 2**20


def model_bytes(run_dir: Path, config: dict) -> tuple[int, int, int]:
    """``(parameter bytes, structure bytes, Adam bytes)`` of the run's best model."""
    from sparsenet.data.translation import bpe_model
    vocab = bpe_model(config["dataset"], config["data_dir"], config["vocab_size"]).get_piece_size()
    density = None if config["method"] == "fc" else 1.0 - config["sparsity"]
    model = Transformer(vocab, config["d_model"], config["heads"], config["layers"], config["d_ff"],
                        density=density, max_length=config["max_length"] + 2)
    model.load_state_dict(torch.load(run_dir / "best.pt", map_location="cpu", weights_only=False)["model"])
    rows = [sparse for sparse, _ in layer_memory(model, "adam")]
    return sum(r.weights for r in rows), sum(r.structure for r in rows), sum(r.optimizer for r in rows)


def row(run_dir: Path) -> dict | None:
    if not (run_dir / "summary.json").exists():
        return None
    config = json.loads((run_dir / "config.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [b["step"] - a["step"] for a, b in zip([{"step": 0, "seconds": 0.0}] + metrics, metrics)]
    seconds = [b["seconds"] - a["seconds"] for a, b in zip([{"step": 0, "seconds": 0.0}] + metrics, metrics)]
    params, structure, adam = model_bytes(run_dir, config)
    return {**summary, "step_seconds": min(s / n for s, n in zip(seconds, steps)),
            "params": params, "structure": structure, "adam": adam}


def main(runs: Path) -> None:
    rows = {r["method"]: r for r in (row(d) for d in sorted(runs.iterdir()) if d.is_dir()) if r}
    print("| method | BLEU (tok., lc) | sacreBLEU | paper preprint (§7.1) | paper NeurIPS 90% (§7.4) | best valid loss "
          "| train s | s/step (best 500) | params MiB | indices+CSR MiB | Adam MiB | links |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for method in METHODS:
        r = rows.get(method)
        if r is None:
            print(f"| {method} | not run | | {PAPER[method][0]} | {PAPER[method][1]} | | | | | | | |")
            continue
        print(f"| {method} | {r['bleu']:.2f} | {r['sacrebleu']:.2f} | {PAPER[method][0]} | {PAPER[method][1]} | "
              f"{r['best_valid_loss']:.3f} | {r['train_seconds']:.0f} | {r['step_seconds']:.3f} | "
              f"{r['params'] / MIB:.2f} | {r['structure'] / MIB:.2f} | {r['adam'] / MIB:.2f} | {r['links']:,} |")
    signature = next((r["sacrebleu_signature"] for r in rows.values()), None)
    print(f"\nsacreBLEU signature: `{signature}`\n\nCommands (one per row):\n")
    for method in METHODS:
        print(f"    {COMMAND.format(method=method)}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/transformer_multi30k"))
