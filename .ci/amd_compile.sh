#!/usr/bin/env bash
# Compiles every kernel in kernels/ to AMD GPU ISA with Debian's clang-16 and HIP headers
# (no AMD GPU needed): CDNA wave64 (gfx90a MI200, gfx940 MI300) and RDNA wave32 (gfx1030,
# gfx1100). Fails if any translation unit fails. Also compiles the headers alone, so a
# header-only change is checked even before any .hip file includes it. Runs one compile per
# core (ROCQ_AMD_JOBS overrides).
set -euo pipefail
cd "$(dirname "$0")/.."
CXX=${ROCQ_AMD_CXX:-clang++-16}
ARCHS=${ROCQ_AMD_ARCHS:-"gfx90a gfx940 gfx1030 gfx1100"}
JOBS=${ROCQ_AMD_JOBS:-$(nproc)}
command -v "$CXX" >/dev/null || { echo "amd_compile: $CXX not found (apt-get install clang-16 libamdhip64-dev)"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for h in kernels/*.h; do echo "#include \"$PWD/$h\""; done > "$tmp/headers.hip"

jobs_file="$tmp/jobs"
for arch in $ARCHS; do
  echo "$arch $tmp/headers.hip" >> "$jobs_file"
  for f in kernels/*.hip; do [ -e "$f" ] && echo "$arch $f" >> "$jobs_file"; done
done

export CXX tmp
compile_one() {
  local arch=$1 src=$2 log
  log="$tmp/$(basename "$src").$arch.log"
  if "$CXX" -std=c++20 -x hip --offload-arch="$arch" -nogpulib --offload-device-only -S -O3 \
       -Wall -Wno-unused-function -Ikernels "$src" -o /dev/null >"$log" 2>&1; then
    echo "ok   $arch $src"
  else
    echo "FAIL $arch $src"; cat "$log"; return 1
  fi
}
export -f compile_one

start=$(date +%s)
if xargs -P "$JOBS" -L 1 bash -c 'compile_one "$0" "$1"' < "$jobs_file" > "$tmp/summary"; then
  echo "amd_compile: $(wc -l < "$jobs_file") translation units for $ARCHS ok in $(( $(date +%s) - start )) s"
else
  grep -v "^ok " "$tmp/summary"
  echo "amd_compile: FAILED"
  exit 1
fi
