#!/usr/bin/env bash
# Quick start: install dependencies, build a release, and run the runtime
# demo on its built-in defaults.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/deps.sh core
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
	-DSLUICE_BENCH=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
exec build/tools/sluice-demo "${1:-2}"
