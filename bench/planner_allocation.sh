#!/bin/bash
# The allocation measurement of docs/planner.md: plan at 16/class from the pilot (<= 4), then
# train the best cell at 16/class uniform and allocated, 3 seeds, on the grid's own images.
# Usage: bench/planner_allocation.sh [DATA_DIR of the finished grid] [OUT_DIR]; then
# python bench/planner_validation.py ... --allocation-results OUT_DIR
set -e
cd "$(dirname "$0")/.."
S=examples/planner-validation.yaml; D=${1:-/tmp/planner/val}; O=${2:-/tmp/planner/alloc}; mkdir -p "$O"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
nice -n 10 .venv/bin/synscale plan $S --data-dir $D --target-per-class 16 --max-pilot-n 4 --max-shift 2 \
  --json $O/plan16.json > $O/plan16.md
CELL=$(.venv/bin/python -c "import json; d=json.load(open('$O/plan16.json')); g,c,s=d['best'].split('|'); print(f\"{g}/{c.split('=')[1]}/{s}\")")
SID=$(.venv/bin/python -c "from synscale.study import load_study; print(load_study('$S').study_id)")
echo "cell $CELL study $SID"
for seed in 0 1 2; do
  for kind in uniform alloc; do
    extra=""; [ $kind = alloc ] && extra="--class-n @$O/plan16.json"
    nice -n 10 .venv/bin/synscale train --cells $CELL --study $SID --store $D/store --n 16 --arch embedded-cnn \
      --epochs 15 --min-steps 40 --max-steps 4000 --batch-size 32 --eval fashion-mnist-test --eval-limit 2000 \
      --workers 0 --seed $seed --json $extra > $O/$kind-s$seed.json 2> $O/$kind-s$seed.log
    echo "$kind seed $seed done"
  done
done
