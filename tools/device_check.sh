#!/usr/bin/env bash
# The GPU checks and timings in one go, on a machine with a CUDA device and PyTorch (no install needed):
#   bash tools/device_check.sh OUTDIR
# 1. tests/test_gpu.py: kernels, functions, compile modes, solvers and fit on the device vs dense float64
# 2. tools/fused_kernel_sweep.py: the Triton fused attention against the composed kernels, over block sizes
# 3. the kernel micro-benchmarks on the device, with achieved bandwidth as a fraction of its copy bandwidth
# 4. beltrami-bench: BLEND with time-dependent attention (fast preset), sparse backends torch and cpp (fused); then
#    BLEND and BLEND-kNN with the paper preset, on the ogbn-arxiv-sized synthetic graph
# 5. the solver micro-benchmarks (each scheme x direct/adjoint on the arxiv-sized graph) on the device
# Each step has its own time limit (NAME_LIMIT=0 skips it) and a section in OUTDIR/steps.log; a failed step
# does not stop the next.
# $BELTRAMI_CACHE may point at a cache holding the positional encodings (DeepWalk on 169K nodes takes
# minutes on a CPU); without one they are computed.
set -u
out=${1:?usage: tools/device_check.sh OUTDIR}
mkdir -p "$out"
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export BELTRAMI_CACHE="${BELTRAMI_CACHE:-$(mktemp -d)}"
device=${DEVICE:-cuda}  # DEVICE=cpu dry-runs the script

step() {  # step NAME SECONDS COMMAND...
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS
  [ "$limit" -gt 0 ] || { echo "== $name: skipped" | tee -a "$out/steps.log"; return; }
  timeout "$limit" "$@" >"$out/$name.tmp" 2>&1
  echo "== $name: rc=$? in $((SECONDS - t0)) s (limit $limit s)" | tee -a "$out/steps.log"
  cat "$out/$name.tmp" >>"$out/steps.log"
  tail -n 30 "$out/$name.tmp"
  rm -f "$out/$name.tmp"
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())"
  python3 -c "import triton; print('triton', triton.__version__)"
  python3 -c "import beltrami.sparse as s; print('sparse backends', s.available_backends())"
  python3 -c "import beltrami; print('synthetic-arxiv', beltrami.load_dataset('synthetic-arxiv').graph.fingerprint())"
  git rev-parse HEAD 2>/dev/null; } >"$out/steps.log" 2>&1
cat "$out/steps.log"
step tests "${TESTS_LIMIT:-120}" env BELTRAMI_TEST_DEVICE="$device" python3 -m pytest -m gpu tests/test_gpu.py -p no:cacheprovider -q
step sweep "${SWEEP_LIMIT:-120}" python3 tools/fused_kernel_sweep.py --device "$device" \
  --output "$out/fused-sweep-$device.json"
step kernels "${KERNELS_LIMIT:-150}" env BELTRAMI_BENCH_DEVICE="$device" python3 -m pytest -m benchmark \
  tests/benchmarks/test_kernels.py -p no:cacheprovider -q --benchmark-json "$out/kernels-$device.json" \
  --benchmark-columns=median,rounds
step fused "${FUSED_LIMIT:-120}" python3 -m beltrami.bench.cli --dataset synthetic-arxiv --model blend \
  --preset fast --attention time-dependent --sparse-backend torch,triton --epochs "${FUSED_EPOCHS:-10}" \
  --device "$device" \
  --output "$out/arxiv-fast-fused-$device.json"
step arxiv "${ARXIV_LIMIT:-150}" python3 -m beltrami.bench.cli --dataset synthetic-arxiv --model blend,blend-knn \
  --preset paper --epochs "${ARXIV_EPOCHS:-5}" --device "$device" --output "$out/arxiv-blend-$device.json"
step solvers "${SOLVERS_LIMIT:-120}" env BELTRAMI_BENCH_DEVICE="$device" python3 -m pytest -m benchmark \
  tests/benchmarks/test_solvers.py -p no:cacheprovider -q --benchmark-json "$out/solvers-$device.json" \
  --benchmark-columns=median
