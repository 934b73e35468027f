#!/usr/bin/env bash
# The whole test suite: install dependencies, build, run every test with
# ctest.  BUILD_DIR and extra cmake arguments as for build.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# The suite needs the simulated clock (tools/simyear); release builds
# (scripts/build.sh alone) leave it out.
scripts/build.sh -DKP_SIMULATED_CLOCK=ON "$@"
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j"$(nproc)" --timeout 900
