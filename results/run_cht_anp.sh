#!/usr/bin/env bash
# Diagnostic queue for issue 12's CHT active-neuron gap (results/mlp_99.md: ANP 46% on MNIST against the
# paper's 29%): the seed-0 CHT run of results/run_mlp_99.sh with one setting changed per run.
#   early_stop1  --early_stop 1.0: the overlap never exceeds 1, so evolution never stops (is the stop's
#                timing the whole gap?)
#   wm           --removal wm: magnitude removal without SET's sign split (the authors' scheduler that
#                records ANP removes by |w| top-k)
#   interval3    --update_interval 3: the ICLR-era README's MNIST protocol updates every 3 epochs
#   fashion_interval3  the same on Fashion-MNIST (paper's CHT ANP 30%; ours 87.5% with updates every epoch)
# Resumable like the other queues. Usage: bash results/run_cht_anp.sh (from the repository root).
set -u
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
run() {  # name, dataset, extra options...
  local name=$1 dataset=$2; shift 2
  local dir=runs/cht_anp/$name
  if [ -f "$dir/summary.json" ]; then return; fi
  if [ -f "$dir/checkpoint.pt" ]; then
    python cli.py train --resume "$dir"
  else
    python cli.py train --dataset "$dataset" --method cht --sparsity 0.99 --epochs 100 --seed 0 "$@" \
      --data_dir ../shared/data --out_dir runs/cht_anp --run_name "$name" --wandb off --quiet
  fi
}
run early_stop1 mnist --early_stop 1.0
run wm mnist --removal wm
run interval3 mnist --update_interval 3
run fashion_interval3 fashion_mnist --update_interval 3
