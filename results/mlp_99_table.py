"""Builds the table of results/mlp_99.md from runs/mlp_99 (finished runs and the progress of unfinished ones).

    python results/mlp_99_table.py [RUNS_DIR]
"""
import json
import statistics
import sys
from pathlib import Path

PAPER = {  # method.md §7.2, NIPS Table 7 (CHTs-p row for chts): accuracy ± s.e. over 3 seeds
    "mnist": {"fc": "98.78±0.02", "set": "98.14±0.02", "rigl": "98.61±0.01", "cht": "98.48±0.04", "chts": "98.81±0.04"},
    "fashion_mnist": {"fc": "90.88±0.02", "set": "89.00±0.09", "rigl": "89.91±0.07", "cht": "88.70±0.07",
                      "chts": "90.93±0.03"},
}
PAPER_ANP = {"mnist": {"chts": "20%", "cht": "29%", "rigl": "29%", "set": "100%"},
             "fashion_mnist": {"chts": "89%", "cht": "30%", "rigl": "55%", "set": "100%"}}
COMMAND = ("python cli.py train --dataset {dataset} --method {method} --sparsity 0.99 --epochs 100 --seed 0 "
           "--data_dir ../shared/data --out_dir runs/mlp_99 --wandb off --quiet")


def row(run_dir: Path) -> dict | None:
    config = json.loads((run_dir / "config.json").read_text())
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    if not metrics:
        return None
    summary = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").exists() else None
    anp = next((m["anp"] for m in reversed(metrics) if m.get("anp") is not None), None)
    return {"dataset": config["dataset"], "method": config["method"], "epochs": len(metrics),
            "finished": summary is not None, "best": max(m["test_accuracy"] for m in metrics),
            "final": metrics[-1]["test_accuracy"], "seconds": statistics.median(m["epoch_seconds"] for m in metrics),
            "anp": anp, "links": metrics[-1]["links"]}


def main(runs: Path) -> None:
    rows = [r for r in (row(d) for d in sorted(runs.iterdir()) if (d / "metrics.jsonl").exists()) if r]
    for dataset in ("mnist", "fashion_mnist"):
        print(f"\n### {dataset}\n")
        print("| method | best test acc % (ours) | paper | final % | epochs run | median s/epoch | ANP (ours / paper) "
              "| links |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for method in ("fc", "set", "rigl", "cht", "chts"):
            r = next((r for r in rows if r["dataset"] == dataset and r["method"] == method), None)
            if r is None:
                print(f"| {method} | not run | {PAPER[dataset][method]} | | | | | |")
                continue
            state = "" if r["finished"] else " (unfinished)"
            anp = f"{r['anp']:.0%}" if r["anp"] is not None else "–"
            print(f"| {method} | {100 * r['best']:.2f}{state} | {PAPER[dataset][method]} | {100 * r['final']:.2f} | "
                  f"{r['epochs']} | {r['seconds']:.1f} | {anp} / {PAPER_ANP[dataset].get(method, '–')} | "
                  f"{r['links']:,} |")
    print("\nCommands (one per row):\n")
    for dataset in ("mnist", "fashion_mnist"):
        for method in ("fc", "set", "rigl", "cht", "chts"):
            print(f"    {COMMAND.format(dataset=dataset, method=method)}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/mlp_99"))
