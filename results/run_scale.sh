#!/usr/bin/env bash
# The million-neuron run of results/scale.md: 3 epochs on MNIST of an MLP with 333,334 + 333,333 + 333,333
# hidden neurons at 10 links per neuron, ER initialisation, one method per invocation (chts or set), so the
# two methods can run side by side on one thread each.
# Resumable: a finished run (summary.json) is skipped, an interrupted one continues from its last checkpoint
# (every 200 steps). SET takes SWI values like CHTs: its default dense Kaiming, N(0, 2/333,333) at 10 links per
# neuron, shrinks the signal ~180x per layer and stayed at chance accuracy (10% after 1,200 steps).
# Usage: OMP_NUM_THREADS=1 bash results/run_scale.sh chts   (from the repository root)
set -u
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
method=${1:?usage: run_scale.sh chts|set}
case $method in
  chts) extra="--regrowth ch2_l3n_soft" ;;
  set) extra="--weights swi" ;;  # dense Kaiming (SET's default) at fan-in 10 of 333k: std 180x too small, no learning
  *) echo "run_scale.sh: unknown method $method (chts or set)" >&2; exit 2 ;;
esac
dir=$(ls -d runs/scale/mlp-mnist-$method-* 2>/dev/null | head -1)
if [ -n "$dir" ] && [ -f "$dir/summary.json" ]; then exit 0; fi
if [ -n "$dir" ] && [ -f "$dir/checkpoint.pt" ]; then
  exec python cli.py train --resume "$dir"
fi
exec python cli.py train --dataset mnist --hidden 333334,333333,333333 --links_per_neuron 10 --method "$method" \
  $extra --init er --epochs 3 --checkpoint_every 200 --seed 0 --data_dir ../shared/data --out_dir runs/scale \
  --wandb off
