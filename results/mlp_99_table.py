"""Builds the tables of results/mlp_99.md from runs/mlp_99: one row per (data set, method), mean ± s.e. over
the seeds that finished (count shown; unfinished runs are listed with their epochs so far), the paper's
NIPS Table 7 cell beside it.

Accuracy columns: "at best valid" = test accuracy of the epoch with the best validation accuracy (the
honest number); "final" = after the last epoch; "best (paper's protocol)" = the maximum test accuracy over
the epochs at the final density. ANP = active-neuron rate after the last update.

    python results/mlp_99_table.py [RUNS_DIR]
"""
import json
import math
import statistics
import sys
from pathlib import Path

from sparsenet.experiments.paper import paper_value

METHODS = ("fc", "set", "rigl", "mest", "cht", "chts", "chtss")
DATASETS = ("mnist", "fashion_mnist")
COMMAND = ("python cli.py train --dataset {dataset} --method {method} --sparsity 0.99 --epochs 100 --seed {seed} "
           "--data_dir ../shared/data --out_dir runs/mlp_99 --wandb off --quiet")


def mean_se(values: list, scale: float = 100.0) -> str:
    values = [scale * v for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values) / math.sqrt(len(values)):.2f}"


def paper(metric: str, dataset: str, method: str) -> str:
    cell = paper_value(metric, {"dataset": dataset, "method": method, "sparsity": 0.0 if method == "fc" else 0.99})
    if cell is None:
        return "–"
    if cell[1] is None:
        return f"{cell[0]:g}"  # ANP: whole percent
    return f"{cell[0]:.2f} ± {cell[1]:.2f}"


def main(runs: Path) -> None:
    summaries, unfinished = [], []
    for run_dir in sorted(d for d in runs.iterdir() if (d / "config.json").exists()):
        if (run_dir / "summary.json").exists():
            summaries.append(json.loads((run_dir / "summary.json").read_text()))
        else:
            config = json.loads((run_dir / "config.json").read_text())
            epochs = len((run_dir / "metrics.jsonl").read_text().splitlines()) if (run_dir / "metrics.jsonl").exists() \
                else 0
            unfinished.append(f"{config['dataset']} {config['method']} seed {config['seed']}: {epochs} epochs")
    for dataset in DATASETS:
        print(f"\n### {dataset}\n")
        print("| method | seeds | at best valid % | final % | best (paper's protocol) % | paper % | ANP (ours / paper) "
              "| s/epoch | links |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for method in METHODS:
            group = [s for s in summaries if s["dataset"] == dataset and s["method"] == method]
            if not group:
                print(f"| {method} | 0 | not run | | | {paper('best_test_accuracy', dataset, method)} | | | |")
                continue
            g = lambda key: [s.get(key) for s in group]
            anp = mean_se(g("anp")) if method != "fc" else "–"
            print(f"| {method} | {len(group)} | {mean_se(g('test_accuracy_at_best_valid'))} | "
                  f"{mean_se(g('final_test_accuracy'))} | {mean_se(g('best_test_accuracy'))} | "
                  f"{paper('best_test_accuracy', dataset, method)} | {anp} / {paper('anp', dataset, method)} | "
                  f"{statistics.mean(g('seconds_per_epoch')):.1f} | {group[0]['links']:,} |")
    if unfinished:
        print("\nUnfinished: " + "; ".join(unfinished))
    print("\nCommands (one per finished run):\n")
    for s in sorted(summaries, key=lambda s: (s["dataset"], METHODS.index(s["method"]), s["seed"])):
        print(f"    {COMMAND.format(dataset=s['dataset'], method=s['method'], seed=s['seed'])}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/mlp_99"))
