#!/usr/bin/env bash
# One call on the GPU machine: build the CUDA extension, run the GPU tests, run a benchmark.
#   bash benchmarks/device_run.sh [test|bench|all|suite|model] [bench args...]
#   test: the kernel tests; suite: every test file with GPU cases; model: benchmarks/bench_model.py
# Logs and results go to $OUT (the device tool's output folder) or ./device_out.
set -uo pipefail
OUT=${OUT:-device_out}; mkdir -p "$OUT"
what=${1:-all}; shift || true
export PYTHONUNBUFFERED=1
t0=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.mem --format=csv,noheader | tee "$OUT/gpu.txt"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
# Build with the compiler whose libstdc++ the process loads at run time. The image puts a newer
# /opt/gcc/bin/g++ first; objects built with its headers carry weak copies of libstdc++
# templates (std::ostream::_M_insert<long>) that crash against the system libstdc++.so.6 the
# moment a c10 error message formats an integer.
if [ -x /usr/bin/g++ ]; then export CXX=/usr/bin/g++ CUDAHOSTCXX=/usr/bin/g++; fi
# No network there: build in place (pip -e would fetch build dependencies), import via a link.
MAX_JOBS=16 ROCQ_BACKEND=cuda TORCH_CUDA_ARCH_LIST=9.0 python3 setup.py build_ext --inplace \
  > "$OUT/build.log" 2>&1 || { tail -60 "$OUT/build.log"; exit 1; }
mkdir -p /tmp/pkg && ln -sfn "$PWD/torch_ops" /tmp/pkg/rocq && export PYTHONPATH=/tmp/pkg:${PYTHONPATH:-}
echo "build: $(( $(date +%s) - t0 )) s"
python3 -c "import rocq, torch; print('backend', rocq.gpu_backend(), torch.__version__, torch.cuda.get_device_name())"
if [ "$what" = test ] || [ "$what" = all ]; then
  python3 -m pytest -q -x tests/test_gpu.py tests/test_gpu_stream.py -p no:cacheprovider 2>&1 | tee "$OUT/test_gpu.log" | tail -25
  python3 -m pytest -q tests/test_ops.py -k cuda -p no:cacheprovider 2>&1 | tee "$OUT/test_ops_cuda.log" | tail -8
  echo "tests done: $(( $(date +%s) - t0 )) s"
fi
if [ "$what" = suite ]; then
  python3 -m pytest -q -p no:cacheprovider -o faulthandler_timeout=300 tests/test_gpu.py tests/test_gpu_stream.py tests/test_gpu_qimma.py tests/test_gpu_qgemm.py \
    tests/test_gpu_quantize.py tests/test_nn.py tests/test_mx.py tests/test_quantize.py 2>&1 | tee "$OUT/test_suite_gpu.log" | tail -25
  python3 -m pytest -q -p no:cacheprovider tests/test_ops.py -k cuda 2>&1 | tee "$OUT/test_ops_cuda.log" | tail -5
  echo "suite done: $(( $(date +%s) - t0 )) s"
fi
if [ "$what" = model ] || [ "$what" = suite ]; then
  python3 benchmarks/bench_model.py --out "$OUT" --formats bf16,q4_k,q4_0,q8_0 --layers 8 --new 64 --reps 3 2>&1 \
    | tee "$OUT/bench_model.log" | tail -15
  echo "model done: $(( $(date +%s) - t0 )) s"
fi
if [ "$what" = bench ] || [ "$what" = all ]; then
  python3 benchmarks/bench_qmatmul.py --out "$OUT" "$@" 2>&1 | tee "$OUT/bench.log" | tail -60
  echo "bench done: $(( $(date +%s) - t0 )) s"
fi
