#!/usr/bin/env bash
# Install Sluice's build, test and benchmark dependencies from Debian
# packages.  Safe to run again: it installs only what is missing, and runs
# apt-get update only when it has something to install.
#
# Usage: tools/deps.sh [core|test|bench|all]   (default: test)
set -euo pipefail

group=${1:-test}
core=(build-essential cmake pkg-config liburing-dev libnuma-dev
      libmimalloc-dev libxxhash-dev libyaml-dev)
test=(clang libclang-rt-dev libcmocka-dev dpkg-dev systemd)
bench=(golang-go libck-dev dpdk-dev nats-server gnuplot-nox)

case "$group" in
core) want=("${core[@]}") ;;
test) want=("${core[@]}" "${test[@]}") ;;
bench|all) want=("${core[@]}" "${test[@]}" "${bench[@]}") ;;
*) echo "usage: $0 [core|test|bench|all]" >&2; exit 2 ;;
esac

missing=()
for pkg in "${want[@]}"; do
	dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
	"${missing[@]}" >/dev/null
