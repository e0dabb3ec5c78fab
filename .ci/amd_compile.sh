#!/usr/bin/env bash
# Compiles every kernel in kernels/ to AMD GPU ISA with Debian's clang-16 and HIP headers
# (no AMD GPU needed): CDNA wave64 (gfx90a MI200, gfx940 MI300) and RDNA wave32 (gfx1030,
# gfx1100). Fails on the first error. Also compiles the headers alone, so a header-only change
# is checked even before any .hip file includes it.
set -euo pipefail
cd "$(dirname "$0")/.."
CXX=${ROCQ_AMD_CXX:-clang++-16}
ARCHS=${ROCQ_AMD_ARCHS:-"gfx90a gfx940 gfx1030 gfx1100"}
command -v "$CXX" >/dev/null || { echo "amd_compile: $CXX not found (apt-get install clang-16 libamdhip64-dev)"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
{
  for h in kernels/*.h; do echo "#include \"$PWD/$h\""; done
} > "$tmp/headers.hip"

sources=("$tmp/headers.hip")
for f in kernels/*.hip; do [ -e "$f" ] && sources+=("$f"); done

for arch in $ARCHS; do
  for src in "${sources[@]}"; do
    "$CXX" -std=c++20 -x hip --offload-arch="$arch" -nogpulib --offload-device-only -S -O3 \
      -Wall -Wno-unused-function -Ikernels "$src" -o "$tmp/out.s"
  done
  echo "amd_compile: $arch ok (${#sources[@]} translation units)"
done
