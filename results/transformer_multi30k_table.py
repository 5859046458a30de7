"""Builds the table of results/transformer_multi30k.md from runs/transformer_multi30k: one row per method,
mean ± s.e. over the seeds that finished (the count is shown), the paper's NIPS Table 2 cell beside it.

Seconds: ``train s`` is the run's training time (validation included) and ``s/step`` its fastest interval
between validations, the least disturbed by other jobs on the machine. Bytes are counted tensor bytes of the
reported model (``sparsenet.sparse.layer_memory`` on a model of the run's sizes at its final density, so the
records need no best.pt): parameters (values; indices and CSR caches in their own column) and Adam's two
moments.

    python results/transformer_multi30k_table.py [RUNS_DIR]
"""
import json
import math
import statistics
import sys
from pathlib import Path

from sparsenet.models import Transformer
from sparsenet.sparse import layer_memory
from sparsenet.experiments.paper import paper_value

METHODS = ("fc", "chts", "set", "rigl", "chtss", "mest")
COMMAND = ("python cli.py train --model transformer --dataset multi30k --preset cpu --method {method} "
           "--sparsity 0.9 --seed {seed} --data_dir ../shared/data --out_dir runs/transformer_multi30k --wandb off "
           "--quiet")
MIB = 2**20


def model_bytes(config: dict) -> tuple[int, int, int]:
    """``(parameter bytes, structure bytes, Adam bytes)`` of the run's model at its final density (tensor
    bytes follow the link count alone, so a fresh model of the run's sizes counts the same as its best.pt)."""
    density = None if config["method"] == "fc" else 1.0 - config["sparsity"]
    model = Transformer(config["vocab_size"], config["d_model"], config["heads"], config["layers"], config["d_ff"], density=density,
                        max_length=config["max_length"] + 2, tie_embeddings=config["tie_embeddings"])
    rows = [sparse for sparse, _ in layer_memory(model, "adam")]
    return sum(r.weights for r in rows), sum(r.structure for r in rows), sum(r.optimizer for r in rows)


def run_row(run_dir: Path) -> dict | None:
    if not (run_dir / "summary.json").exists():
        return None
    config = json.loads((run_dir / "config.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    previous = [{"step": 0, "seconds": 0.0}] + metrics
    step_seconds = min((b["seconds"] - a["seconds"]) / (b["step"] - a["step"]) for a, b in zip(previous, metrics))
    params, structure, adam = model_bytes(config)
    return {**summary, "step_seconds": step_seconds, "params": params, "structure": structure, "adam": adam}


def mean_se(values: list[float], digits: int = 2) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values) / math.sqrt(len(values)):.{digits}f}"


def main(runs: Path) -> None:
    rows = [r for r in (run_row(d) for d in sorted(runs.iterdir()) if d.is_dir()) if r]
    print("| method | seeds | sacreBLEU | BLEU (tok., lc) | paper NIPS 90% (FC: 95%) | best valid ppl | links (reported) "
          "| train s | s/step | params MiB | indices+CSR MiB | Adam MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for method in METHODS:
        group = [r for r in rows if r["method"] == method]
        cell = (paper_value("bleu", {"dataset": "multi30k", "method": method, "sparsity": 0.9})
                or paper_value("bleu", {"dataset": "multi30k", "method": method, "sparsity": 0.95}))
        paper = "–" if cell is None else f"{cell[0]:.2f}" + (f" ± {cell[1]:.2f}" if cell[1] is not None else "")
        if not group:
            print(f"| {method} | 0 | not run | | {paper} | | | | | | | |")
            continue
        g = lambda key: [r[key] for r in group]
        print(f"| {method} | {len(group)} | {mean_se(g('sacrebleu'))} | {mean_se(g('bleu'))} | {paper} | "
              f"{mean_se([math.exp(v) for v in g('best_valid_loss')])} | {group[0]['links']:,} | "
              f"{statistics.mean(g('train_seconds')):.0f} | {statistics.mean(g('step_seconds')):.3f} | "
              f"{group[0]['params'] / MIB:.2f} | {group[0]['structure'] / MIB:.2f} | {group[0]['adam'] / MIB:.2f} |")
    signature = next((r["sacrebleu_signature"] for r in rows), None)
    print(f"\nsacreBLEU signature: `{signature}`\n\nCommands (one per run):\n")
    for r in sorted(rows, key=lambda r: (METHODS.index(r["method"]), r["seed"])):
        print(f"    {COMMAND.format(method=r['method'], seed=r['seed'])}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/transformer_multi30k"))
