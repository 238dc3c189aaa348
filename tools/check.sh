#!/usr/bin/env bash
# Install what the tests need, then build and run the whole suite in three
# builds: plain (gcc, warnings as errors), ASan+UBSan (clang) and TSan
# (clang).  Stress sizes shrink under the sanitizers but never vanish.
#
# Usage: tools/check.sh [plain|asan|tsan ...]   (default: all three)
# Then every fuzz target runs FUZZ_SECONDS seconds (default 20, 0 skips
# it) through tools/fuzz.sh; a crash or a broken invariant fails the check.
set -uo pipefail
cd "$(dirname "$0")/.."

tools/deps.sh test || exit 1
builds=("$@")
[ ${#builds[@]} -gt 0 ] || builds=(plain asan tsan)
jobs=$(nproc)
failed=()
passed_total=0
failed_total=0

configure() {
	local name=$1 dir=build-$1
	case "$name" in
	plain) CC=gcc cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DSLUICE_WERROR=ON -DCMAKE_INSTALL_PREFIX=/usr ;;
	asan) CC=clang cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DSLUICE_WERROR=ON -DSLUICE_SANITIZE=address ;;
	tsan) CC=clang cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DSLUICE_WERROR=ON -DSLUICE_SANITIZE=thread ;;
	*) echo "unknown build $name" >&2; return 1 ;;
	esac
}

for b in "${builds[@]}"; do
	echo "=== $b build ==="
	if ! configure "$b" >/dev/null || ! cmake --build "build-$b" -j"$jobs" >/dev/null; then
		echo "$b: build failed"
		cmake --build "build-$b" -j1 2>&1 | grep -E "error|warning" | head -40
		failed+=("$b")
		continue
	fi
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
	out=$(cd "build-$b" && ctest --output-on-failure --timeout 600 2>&1)
	rc=$?
	echo "$out" | tail -n 30
	p=$(echo "$out" | sed -n 's/.* tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\2 \1/p')
	if [ -n "$p" ]; then
		set -- $p
		passed_total=$((passed_total + $1 - $2))
		failed_total=$((failed_total + $2))
	fi
	[ $rc -eq 0 ] || failed+=("$b")
done

fuzz_seconds=${FUZZ_SECONDS:-20}
if [ "$fuzz_seconds" != 0 ]; then
	echo "=== fuzz ==="
	out=$(tools/fuzz.sh "$fuzz_seconds" 2>&1)
	rc=$?
	echo "$out" | tail -n 60
	p=$(echo "$out" | sed -n 's/^fuzz: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p')
	if [ -n "$p" ]; then
		set -- $p
		passed_total=$((passed_total + $1))
		failed_total=$((failed_total + $2))
	fi
	[ $rc -eq 0 ] || failed+=("fuzz")
fi

echo
echo "checked: ${passed_total} passed, ${failed_total} failed"
if [ ${#failed[@]} -gt 0 ]; then
	echo "failed builds: ${failed[*]}"
	exit 1
fi
