#!/usr/bin/env bash
# Build the libFuzzer targets (clang, ASan+UBSan) and run each for a while,
# starting from the hand-made seeds in tests/fuzz/corpus/<name>/ with the
# target's dictionary, tests/fuzz/fuzz_<name>.dict.
#
# Usage: tools/fuzz.sh [seconds] [target ...]
#   seconds  how long each target runs (default 30)
#   target   line, frame, config, admin (default: all four)
# Environment: FUZZ_BUILD, the build directory (default build-fuzz);
#   FUZZ_JOBS, parallel build jobs (default 2).
#
# What a run finds goes under the build directory, never into the source
# tree: new inputs in corpus/<name>/, a failing input in
# artifacts/<name>/crash-* (its bytes are also printed in base64 when
# short).  Replay one with: <build>/tests/fuzz/fuzz_<name> <file>.
# The last line says how many targets passed and failed; the script exits
# non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-30}
shift $(($# > 0 ? 1 : 0))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(line frame config admin)
build=${FUZZ_BUILD:-build-fuzz}

case "$seconds" in
'' | *[!0-9]*) echo "fuzz.sh: seconds must be a number, not '$seconds'" >&2; exit 2 ;;
esac

CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DSLUICE_FUZZ=ON -DSLUICE_WERROR=ON -DSLUICE_BENCH=OFF \
	-DBUILD_TESTING=OFF >/dev/null || exit 1
if ! cmake --build "$build" -j"${FUZZ_JOBS:-2}" \
	--target "${targets[@]/#/fuzz_}" >/dev/null; then
	echo "fuzz.sh: build failed" >&2
	cmake --build "$build" -j1 --target "${targets[@]/#/fuzz_}" 2>&1 |
		grep -E "error|warning" | head -40
	exit 1
fi

# What is kept of libFuzzer's output: the totals, and a failure's report.
report='^(Done|stat::(number_of_executed_units|new_units_added|peak_rss_mb))'
report+='|^(==[0-9]+==|SUMMARY|Base64|    #[0-9]+ )'
report+='|invariant broken|Test unit written'
passed=0
failed=()
for t in "${targets[@]}"; do
	bin=$build/tests/fuzz/fuzz_$t
	seeds=tests/fuzz/corpus/$t
	corpus=$build/corpus/$t
	artifacts=$build/artifacts/$t
	dict=()
	[ -f "tests/fuzz/fuzz_$t.dict" ] && dict=(-dict="tests/fuzz/fuzz_$t.dict")
	mkdir -p "$corpus" "$artifacts"

	echo "=== fuzz_$t: ${seconds}s ==="
	# New inputs go to the first directory; the seeds are only read.  An
	# input that takes over 25 s counts as a hang, and fails the target.
	"$bin" -max_total_time="$seconds" -timeout=25 -print_final_stats=1 \
		-artifact_prefix="$artifacts/" "${dict[@]}" \
		"$corpus" "$seeds" 2>&1 |
		grep -E "$report"
	rc=${PIPESTATUS[0]}
	if [ "$rc" -ne 0 ]; then
		echo "fuzz_$t: FAILED (exit $rc); the input is in $artifacts/"
		failed+=("$t")
	else
		passed=$((passed + 1))
	fi
done

if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz.sh: failed: ${failed[*]}"
fi
echo "fuzz: ${passed} passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ]
