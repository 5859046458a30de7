#!/usr/bin/env bash
# Reproduction queue for results/transformer_multi30k.md: Multi30k en→de, --preset cpu, 90% sparsity, seed 0.
# Resumable: finished runs (summary.json) are skipped, interrupted ones continue from their last checkpoint.
# Usage: bash results/run_transformer_multi30k.sh [METHOD...]   (run from the repository root)
set -u
methods=${@:-chts set rigl fc}
for method in $methods; do
  tag=0.9; [ "$method" = fc ] && tag=0  # the dense baseline's run name records sparsity 0
  dir=runs/transformer_multi30k/transformer-multi30k-$method-s$tag-seed0
  if [ -f "$dir/summary.json" ]; then continue; fi
  if [ -f "$dir/checkpoint.pt" ]; then
    python cli.py train --resume "$dir"
  else
    python cli.py train --model transformer --dataset multi30k --preset cpu --method "$method" --sparsity 0.9 \
      --seed 0 --data_dir ../shared/data --out_dir runs/transformer_multi30k --wandb off --quiet
  fi
done
