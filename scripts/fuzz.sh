#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (+ ASan/UBSan) and runs each one for
# a bounded time: scripts/fuzz.sh [seconds-per-target, default 20]
# Crashes are written to build/fuzz/artifacts/ and fail the script.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DNODENOMAD_BUILD_FUZZERS=ON -DNODENOMAD_BUILD_TESTS=OFF -DNODENOMAD_BUILD_BENCHMARKS=OFF \
  -DNODENOMAD_BUILD_EXAMPLES=OFF -DNODENOMAD_SANITIZE=address,undefined >/dev/null
cmake --build build/fuzz -j"$(nproc)"
mkdir -p build/fuzz/artifacts
for target in build/fuzz/fuzz/fuzz_*; do
  [ -x "$target" ] || continue
  name=$(basename "$target")
  corpus=build/fuzz/corpus/$name
  mkdir -p "$corpus"
  echo "fuzz: $name for ${seconds}s"
  "$target" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix=build/fuzz/artifacts/"$name"- "$corpus" 2>&1 | tail -n 3
done
echo "fuzz: all targets ran without a crash"
