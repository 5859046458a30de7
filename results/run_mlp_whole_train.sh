#!/usr/bin/env bash
# Diagnostic for results/mlp_99.md (issue 12): CHTs at 99% on the whole training set (--valid_fraction 0,
# the paper's protocol: 60,000 training images, the best test accuracy at the final density reported), seed 0,
# MNIST and Fashion-MNIST, to measure what the default 10% validation hold-out costs against the paper.
# Resumable like the main queue. Usage: bash results/run_mlp_whole_train.sh (OMP_NUM_THREADS default 1)
set -u
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
for dataset in mnist fashion_mnist; do
  dir=runs/mlp_whole_train/mlp-$dataset-chts-s0.99-seed0
  if [ -f "$dir/summary.json" ]; then continue; fi
  if [ -f "$dir/checkpoint.pt" ]; then
    python cli.py train --resume "$dir"
  else
    python cli.py train --dataset "$dataset" --method chts --sparsity 0.99 --epochs 100 --seed 0 --valid_fraction 0 \
      --data_dir ../shared/data --out_dir runs/mlp_whole_train --wandb off --quiet
  fi
done
