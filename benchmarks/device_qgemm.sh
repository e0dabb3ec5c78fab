#!/usr/bin/env bash
# One call on the GPU machine for the qgemm path: build, tests, benchmark (logs/JSON to $OUT).
#   bash benchmarks/device_qgemm.sh [bench args...]
set -uo pipefail
OUT=${OUT:-device_out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=python3; [ -x /opt/torch/.venv/bin/python3 ] && PY=/opt/torch/.venv/bin/python3
t0=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.mem --format=csv,noheader | tee "$OUT/gpu.txt"
if ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
# No network there: build in place, import through a link.
MAX_JOBS=16 ROCQ_BACKEND=cuda TORCH_CUDA_ARCH_LIST=9.0 $PY setup.py build_ext --inplace \
  > "$OUT/build.log" 2>&1 || { tail -60 "$OUT/build.log"; exit 1; }
mkdir -p /tmp/pkg && ln -sfn "$PWD/torch_ops" /tmp/pkg/rocq && export PYTHONPATH=/tmp/pkg:${PYTHONPATH:-}
echo "build: $(( $(date +%s) - t0 )) s"
timeout 150 $PY -m pytest -q --tb=line -n 4 -p no:cacheprovider tests/test_gpu_qgemm.py 2>&1 | tee "$OUT/test_gpu_qgemm.log" | tail -15
# the generic qmatmul tests with every call forced through qgemm (fp16/bf16 x; fp32 x needs 1e-4 there)
ROCQ_QMATMUL_PATH=qgemm timeout 90 $PY -m pytest -q --tb=line -n 4 -p no:cacheprovider tests/test_ops.py \
  -k "qmatmul_vs_fp64 and cuda and not dtype0" 2>&1 | tee "$OUT/test_ops_forced_qgemm.log" | tail -6
echo "tests done: $(( $(date +%s) - t0 )) s"
timeout 280 $PY benchmarks/bench_qgemm.py --out "$OUT/bench_qgemm.json" "$@" 2>&1 | tee "$OUT/bench_qgemm.log" | tail -45
echo "bench done: $(( $(date +%s) - t0 )) s"
