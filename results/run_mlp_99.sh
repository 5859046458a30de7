#!/usr/bin/env bash
# Reproduction queue for results/mlp_99.md: the paper's MLP protocol (100 epochs, 99% sparsity) with the
# default 10% validation split. SET, RigL, CHTs: seeds 0-2 on MNIST and Fashion-MNIST; CHT, MEST, CHTss: seed 0;
# FC: seed 0. Seed 0 of everything first, so a partial queue already fills every row once.
# Resumable: finished runs (summary.json) are skipped, interrupted ones continue from their last checkpoint.
# Usage: bash results/run_mlp_99.sh   (from the repository root; OMP_NUM_THREADS as you like, default 1)
set -u
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
run() {  # dataset method seed
  local tag=0.99; [ "$2" = fc ] && tag=0  # the dense baseline's run name records sparsity 0
  local dir=runs/mlp_99/mlp-$1-$2-s$tag-seed$3
  if [ -f "$dir/summary.json" ]; then return; fi
  if [ -f "$dir/checkpoint.pt" ]; then
    python cli.py train --resume "$dir"
  else
    python cli.py train --dataset "$1" --method "$2" --sparsity 0.99 --epochs 100 --seed "$3" \
      --data_dir ../shared/data --out_dir runs/mlp_99 --wandb off --quiet
  fi
}
for seed in 0 1 2; do
  for dataset in mnist fashion_mnist; do
    for method in chts set rigl; do run $dataset $method $seed; done
    if [ $seed = 0 ]; then for method in cht mest chtss; do run $dataset $method 0; done; fi
  done
done
for dataset in mnist fashion_mnist; do run $dataset fc 0; done
