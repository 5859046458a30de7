#!/usr/bin/env bash
# Queue for results/lm.md (issue 15): the default ~10M-parameter LLaMA-style model on the offline corpus
# (Multi30k en+de + the WMT sample), 1,000 steps, seed 0: dense, CHTs at 70% (the headline method, first),
# dense at a third of the learning rate (is the dense baseline's 3e-3 its best?), SET at 70%, static sparse
# at 70% (CHTs's SWI values and topology without evolution: how much of CHTs's lead over dense is the
# initial value scale?), dense with Kaiming-scaled projections (the same question from the other side),
# then CHTs at 90%, RigL and CHTss at 70%, SET and RigL at 90%, the Kaiming-scaled dense model at lr 1e-3 (the
# sparse models still lead the Kaiming-scaled dense model at 3e-3: is its rate too high?), and CHTss at 90%
# sparsity of the attention and MLP projections.
# Resumable: finished runs (summary.json) are skipped, interrupted ones continue from their last checkpoint.
# Several workers may share the queue: each run is taken under a lock (flock, released when its worker
# dies), so two one-thread workers run two runs at once (processes x threads <= 2 on this machine):
#   OMP_NUM_THREADS=1 bash results/run_lm.sh & OMP_NUM_THREADS=1 bash results/run_lm.sh &
# Usage: bash results/run_lm.sh   (from the repository root; OMP_NUM_THREADS default 2). A running worker reads
# this file as it goes: change it by writing a new file and moving it over this one, never in place.
set -u
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
mkdir -p runs/lm
run() {  # method sparsity [learning rate] [name tag [extra options]]
  local name=lm-multi30k-$1-s$2${3:+-lr$3}${4:+-$4}-seed0 dir
  dir=runs/lm/$name
  if [ -f "$dir/summary.json" ]; then return; fi
  (
    flock -n 9; taken=$?
    if [ $taken -eq 1 ]; then exit 0; fi  # another worker has this run
    if [ $taken -ne 0 ]; then echo "run_lm.sh: flock failed ($taken) on runs/lm/$name.lock" >&2; exit 1; fi
    if [ -f "$dir/summary.json" ]; then exit 0; fi  # it finished while this worker waited
    if [ -f "$dir/checkpoint.pt" ]; then
      python cli.py train --resume "$dir"
    else
      python cli.py train --model lm --dataset multi30k --method "$1" --sparsity "$2" --seed 0 ${3:+--lr $3} \
        ${5:-} --run_name "$name" --data_dir ../shared/data --out_dir runs/lm --wandb off --quiet
    fi
  ) 9>"runs/lm/$name.lock"
}
run fc 0
run chts 0.7
run fc 0 0.001
run set 0.7
run static 0.7 "" brf-swi "--init brf --weights swi"
run fc 0 "" kaiming "--weights kaiming"  # the dense model at the sparse models' value scale (SWI at density 1)
run chts 0.9
for method in rigl chtss; do run $method 0.7; done
for method in set rigl; do run $method 0.9; done
run fc 0 0.001 kaiming "--weights kaiming"  # is 3e-3 too high for the Kaiming-scaled dense model?
run chtss 0.9
run fc 0 0.006 kaiming "--weights kaiming"  # a dense rate above 3e-3: does the dense model close the gap?
run set 0.7 "" swi "--weights swi"  # SET's ER topology with SWI values: topology and value scale separated for SET
