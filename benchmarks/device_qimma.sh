#!/usr/bin/env bash
# One call on the GPU machine for the integer matrix-unit streaming kernel (kernels/qimma_stream.h):
# build, its tests, then the rocq op with the kernel off (ROCQ_QIMMA=0: today's kernels) and forced
# (ROCQ_QIMMA=1), alternated twice in one process each, plus bf16 F.linear; a side-by-side table.
#   bash benchmarks/device_qimma.sh [shapes] [ms] [formats]
# Logs and JSON to $OUT (the device tool's output folder) or ./device_out.
set -uo pipefail
OUT=${OUT:-device_out}; mkdir -p "$OUT"
SHAPES=${1:-70b_up,8b_up}
MS=${2:-1,2,3,4,8}
FORMATS=${3:-q4_0,q4_1,q5_0,q5_1,q8_0,q4_k,q5_k,iq4_nl,iq4_xs,mxfp4,ocp_mxfp4}
t0=$(date +%s)
OUT=$OUT bash benchmarks/device_run.sh build 2>&1 | tail -3
export PYTHONPATH=/tmp/pkg:/tmp/site PYTHONUNBUFFERED=1
timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_gpu_qimma.py 2>&1 | tee "$OUT/test_gpu_qimma.log" | tail -12
echo "tests done: $(( $(date +%s) - t0 )) s"
# (ROCQ_QIMMA_STAGES=2 in the environment: the two-stage instances everywhere, more CTAs a
# multiprocessor where x is large)
for t in off on off2 on2; do
  case $t in off*) Q=0;; *) Q=1;; esac
  case $t in off) M=rocq,bf16;; *) M=rocq;; esac
  ROCQ_QIMMA=$Q timeout 150 python3 benchmarks/bench_qmatmul.py --out "$OUT" --shapes "$SHAPES" --ms "$MS" \
    --methods $M --formats "$FORMATS" --tag "qimma_$t" > "$OUT/bench_qimma_$t.log" 2>&1
  echo "bench $t done: $(( $(date +%s) - t0 )) s"
done
grep "bf16 " "$OUT/bench_qimma_off.log" | head -12
python3 benchmarks/compare_runs.py "$OUT"/bench_qmatmul*qimma_off.json "$OUT"/bench_qmatmul*qimma_on.json \
  "$OUT"/bench_qmatmul*qimma_off2.json "$OUT"/bench_qmatmul*qimma_on2.json 2>&1 | tee "$OUT/compare_qimma.txt"
