#!/usr/bin/env bash
# Reproduction queue for results/mlp_99.md: the paper's MLP protocol (100 epochs, 99% sparsity, seed 0).
# Resumable: finished runs (summary.json) are skipped, interrupted ones continue from their checkpoint.
# Usage: bash results/run_mlp_99.sh DATASET [METHOD...]   (run from the repository root)
set -u
dataset=$1; shift
methods=${@:-fc set rigl cht chts}
for method in $methods; do
  tag=0.99; [ "$method" = fc ] && tag=0  # the dense baseline's run name records sparsity 0
  dir=runs/mlp_99/mlp-$dataset-$method-s$tag-seed0
  if [ -f "$dir/summary.json" ]; then continue; fi
  if [ -f "$dir/checkpoint.pt" ]; then
    python cli.py train --resume "$dir"
  else
    python cli.py train --dataset "$dataset" --method "$method" --sparsity 0.99 --epochs 100 --seed 0 \
      --data_dir ../shared/data --out_dir runs/mlp_99 --wandb off --quiet
  fi
done
