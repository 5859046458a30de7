#!/usr/bin/env bash
# Reproduction queue for results/transformer_multi30k.md: Multi30k en→de, --preset cpu, 90% sparsity.
# FC, CHTs, SET, RigL: seeds 0-2 (seed 0 of all four first); CHTss and MEST: seed 0.
# Resumable: finished runs (summary.json) are skipped, interrupted ones continue from their last checkpoint.
# Usage: bash results/run_transformer_multi30k.sh   (from the repository root; OMP_NUM_THREADS default 2)
set -u
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
run() {  # method seed
  local tag=0.9; [ "$1" = fc ] && tag=0  # the dense baseline's run name records sparsity 0
  local dir=runs/transformer_multi30k/transformer-multi30k-$1-s$tag-seed$2
  if [ -f "$dir/summary.json" ]; then return; fi
  if [ -f "$dir/checkpoint.pt" ]; then
    python cli.py train --resume "$dir"
  else
    python cli.py train --model transformer --dataset multi30k --preset cpu --method "$1" --sparsity 0.9 \
      --seed "$2" --data_dir ../shared/data --out_dir runs/transformer_multi30k --wandb off --quiet
  fi
}
for seed in 0 1 2; do
  for method in fc chts set rigl; do run $method $seed; done
  if [ $seed = 0 ]; then for method in chtss mest; do run $method 0; done; fi
done
