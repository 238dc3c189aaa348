#!/usr/bin/env bash
# Quick start: install the build dependencies, build a release, then show
# sluiced at work.  sluiced starts on its defaults (lines on 127.0.0.1:7400,
# admin on 127.0.0.1:7401) with its one route's sink turned into a tcp sink
# that points at sluice-load; sluice-load sends events for a few seconds,
# listens as that sink, checks that every key's last version came back and
# prints its summary; then sluiced is stopped with SIGTERM and drains.
#
# Usage: tools/quickstart.sh [BUILD_DIR]          (default: build)
# Environment: QUICKSTART_RATE (events/s, default 100k) and
# QUICKSTART_TIME (default 5s) shape the load.
#
# Exit status: 0 when the demo ran and every key was reconciled at its
# last version; 1 when sluice-load found keys stale or missing, or when
# sluiced could not start or did not stop cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."

build=${1:-build}
rate=${QUICKSTART_RATE:-100k}
duration=${QUICKSTART_TIME:-5s}
input=127.0.0.1:7400
sink=127.0.0.1:7500

tools/deps.sh core
echo "quickstart: building a release in $build/"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
	-DSLUICE_BENCH=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
sluiced=$build/tools/sluiced
load=$build/tools/load/sluice-load

log=$(mktemp)
pid=
# Whatever happens, leave no sluiced behind: the one started here.
cleanup() {
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -f "$log"
}
trap cleanup EXIT

# sluiced on its defaults, but with the route reconciling into a tcp sink.
args=(--set routes[0].sink.type=tcp --set "routes[0].sink.addr=$sink")
if [[ $(id -u) -eq 0 ]] && "$sluiced" --help 2>&1 | grep -q -- --allow-root
then
	args+=(--allow-root)
fi
echo "quickstart: $sluiced ${args[*]}"
"$sluiced" "${args[@]}" 2>"$log" &
pid=$!

# Ready once it says so; an exit before that is a failed start.
for ((i = 0; i < 100; i++)); do
	grep -q 'msg="ready"' "$log" && break
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "quickstart: sluiced did not start:" >&2
		sed 's/^/  /' "$log" >&2
		pid=
		exit 1
	fi
	sleep 0.1
done
if ! grep -q 'msg="ready"' "$log"; then
	echo "quickstart: sluiced is not ready after 10 s:" >&2
	sed 's/^/  /' "$log" >&2
	exit 1
fi

echo "quickstart: $load -r $rate -t $duration -w 1s --verify $sink $input"
echo
status=0
"$load" -r "$rate" -t "$duration" -w 1s --verify "$sink" "$input" || status=$?
echo

# A clean stop: SIGTERM drains what was accepted, then sluiced exits 0.
kill -TERM "$pid"
sd_status=0
wait "$pid" || sd_status=$?
pid=
echo "quickstart: sluiced's log:"
sed 's/^/  /' "$log"

if ((status != 0)); then
	echo "quickstart: FAILED: sluice-load exited $status" \
		"(keys stale or missing, or the run failed; see above)" >&2
	exit 1
fi
if ((sd_status != 0)); then
	echo "quickstart: FAILED: sluiced exited $sd_status" >&2
	exit 1
fi
echo "quickstart: every key's last version came back; sluiced stopped" \
	"cleanly.  Next: docs/configuration.md, docs/sluice-load.md."
