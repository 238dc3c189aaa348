#!/usr/bin/env bash
# Cross-build the context-switch test for aarch64 and run it under qemu, so
# the aarch64 assembly is exercised on an x86-64 machine.  Installs the cross
# compiler and qemu from Debian packages if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg in qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross liburing-dev; do
	dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

# liburing's headers are architecture-independent; copy them so the cross
# compiler does not pick up the host's other headers.
inc=$(mktemp -d)
trap 'rm -rf "$inc"' EXIT
cp -r /usr/include/liburing.h /usr/include/liburing "$inc/"
aarch64-linux-gnu-gcc -O2 -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror \
	-I. -I"$inc" tests/test_switch.c core/switch_aarch64.S \
	core/switch_init.c -o "$inc/test_switch"
qemu-aarch64 -L /usr/aarch64-linux-gnu "$inc/test_switch"
