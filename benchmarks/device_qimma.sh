#!/usr/bin/env bash
# One call on the GPU machine for the integer matrix-unit streaming kernel (kernels/qimma_stream.h):
# build, its tests, then the rocq op in one process per variant, and a side-by-side table
# (benchmarks/compare_runs.py; the first variant also times bf16 F.linear).
#   bash benchmarks/device_qimma.sh [shapes] [ms] [formats] [variants]
# Variants (in order): off (ROCQ_QIMMA=0: today's kernels), on (ROCQ_QIMMA=1: this kernel
# wherever it fits), early (on, first copies issued before rounding x: ROCQ_QIMMA_EARLY=1), two
# (on, two-stage instances: ROCQ_QIMMA_STAGES=2); e.g. "off on off on" alternates. Keep a call
# under the device's 600 s: the build takes 1-2 minutes, the tests a few (TESTS=0 skips them, for
# a second call of other variants: time those against an "off" run of the same call, as each
# call may get another machine).
# Logs and JSON to $OUT (the device tool's output folder) or ./device_out.
set -uo pipefail
OUT=${OUT:-device_out}; mkdir -p "$OUT"
SHAPES=${1:-70b_up}
MS=${2:-1,2,4,8}
FORMATS=${3:-q4_0,q4_1,q5_0,q5_1,q8_0,q4_k,q5_k,iq4_nl,iq4_xs,mxfp4,ocp_mxfp4}
VARIANTS=${4:-off on}
t0=$(date +%s)
OUT=$OUT bash benchmarks/device_run.sh build 2>&1 | tail -3
export PYTHONPATH=/tmp/pkg:/tmp/site PYTHONUNBUFFERED=1
if [ "${TESTS:-1}" != 0 ]; then
  timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_gpu_qimma.py 2>&1 | tee "$OUT/test_gpu_qimma.log" | tail -12
  echo "tests done: $(( $(date +%s) - t0 )) s"
fi
i=0; jsons=()
for v in $VARIANTS; do
  i=$((i + 1))
  case $v in
    off) env=(ROCQ_QIMMA=0);;
    on) env=(ROCQ_QIMMA=1);;
    early) env=(ROCQ_QIMMA=1 ROCQ_QIMMA_EARLY=1);;
    two) env=(ROCQ_QIMMA=1 ROCQ_QIMMA_STAGES=2);;
    *) echo "unknown variant $v"; exit 2;;
  esac
  methods=rocq; [ $i = 1 ] && methods=rocq,bf16
  env "${env[@]}" timeout 200 python3 benchmarks/bench_qmatmul.py --out "$OUT" --shapes "$SHAPES" --ms "$MS" \
    --methods $methods --formats "$FORMATS" --tag "qimma_${i}_$v" > "$OUT/bench_qimma_${i}_$v.log" 2>&1
  jsons+=("$OUT/bench_qmatmul_qimma_${i}_$v.json")
  echo "bench $i $v done: $(( $(date +%s) - t0 )) s"
done
grep "bf16 " "$OUT"/bench_qimma_1_*.log | head -6
python3 benchmarks/compare_runs.py "${jsons[@]}" 2>&1 | tee "$OUT/compare_qimma.txt"
