#!/usr/bin/env bash
# Paper-table rows on a GPU machine, several at once (small graphs leave one GPU mostly idle per process):
#   bash tools/device_tables.sh OUTDIR SECONDS TABLE:DATASET:MODEL:SEEDS ...
# e.g. bash tools/device_tables.sh out 300 3:cora:blend-knn:10 3:citeseer:blend:10
# Each row runs tools/reproduce.py with --device cuda and writes OUTDIR/table{T}-{dataset}-{model}-paper.json;
# a row stopped at SECONDS leaves the seeds it finished in that name + .partial. The log is OUTDIR/tables.log.
# The rows share the GPU, so their seconds per epoch are those of a shared device.
set -u
out=${1:?usage: tools/device_tables.sh OUTDIR SECONDS TABLE:DATASET:MODEL:SEEDS ...}
limit=${2:?seconds}
shift 2
mkdir -p "$out"
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
for row in "$@"; do
  IFS=: read -r table dataset model seeds <<<"$row"
  timeout "$limit" python3 tools/reproduce.py --table "$table" --datasets "$dataset" --models "$model" \
    --seeds "$seeds" --device "${DEVICE:-cuda}" --results-dir "$out" --markdown "$out/.results.md" \
    >"$out/.$row.log" 2>&1 &
done
wait
for row in "$@"; do
  echo "== $row" >>"$out/tables.log"
  tail -c 3000 "$out/.$row.log" >>"$out/tables.log"
done
rm -f "$out"/.*.log "$out/.results.md"
python3 - "$out" <<'PY' | tee -a "$out/tables.log"
import json, pathlib, sys
for p in sorted(pathlib.Path(sys.argv[1]).glob("table*.json*")):
    d = json.loads(p.read_text())
    print(f"{p.name}: {len(d['runs'])} seeds, test {100 * d['test_acc']:.1f} ± {100 * d['test_acc_std']:.1f}, "
          f"{d['seconds_per_epoch']:.3f} s/epoch")
PY
