#!/usr/bin/env bash
# Run the tests once per CPU kernel path this machine can force, so a tolerance that only holds
# for one instruction set shows up here and not on someone else's machine.
#
#   bash scripts/kernel_matrix.sh                      # the whole suite, every path (slow)
#   bash scripts/kernel_matrix.sh tests/test_lora.py   # selected tests, every path
#
# Paths: ATen's vectorised kernels (ATEN_CPU_CAPABILITY=default|avx2|avx512; a machine cannot
# run above its own ISA, so unsupported ones are skipped) and oneDNN's (ONEDNN_MAX_CPU_ISA, which
# caps the ISA of oneDNN's matmuls: AVX2, AVX512_CORE, AVX512_CORE_AMX). Not in CI: it runs the
# suite several times. Results go to stdout, one summary line per path at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
TESTS=("$@")
[ ${#TESTS[@]} -eq 0 ] && TESTS=(tests)
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
has() { [[ " $flags " == *" $1 "* ]]; }

paths=("ATEN_CPU_CAPABILITY=default" "ATEN_CPU_CAPABILITY=avx2")
has avx512f && paths+=("ATEN_CPU_CAPABILITY=avx512")
paths+=("ONEDNN_MAX_CPU_ISA=AVX2")
has avx512f && paths+=("ONEDNN_MAX_CPU_ISA=AVX512_CORE")
has amx_tile && paths+=("ONEDNN_MAX_CPU_ISA=AVX512_CORE_AMX")

summary=()
for path in "${paths[@]}"; do
    echo "=== $path"
    out=$(env "$path" OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" "$PY" -m pytest -q -p no:cacheprovider "${TESTS[@]}" 2>&1)
    rc=$?
    echo "$out" | tail -5
    summary+=("$path: $(echo "$out" | tail -1) (exit $rc)")
done
echo
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
printf '%s\n' "${summary[@]}"
