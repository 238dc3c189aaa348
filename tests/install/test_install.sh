#!/usr/bin/env bash
# The install rules, end to end: install a build into a staging directory,
# build tests/install/embed.c against the staged pkg-config file and
# headers (shared and static) and run it, verify the systemd unit, and,
# for a build with the /usr prefix, build the Debian package and inspect it.
#
# Usage: test_install.sh SOURCE_DIR BUILD_DIR
set -euo pipefail

src=$1
build=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage=$work/stage
fail() { echo "test_install: $*" >&2; exit 1; }

DESTDIR=$stage cmake --install "$build" >/dev/null

prefix=$(sed -n 's/^prefix=//p' "$build/sluice.pc")
pcdir=$(dirname "$(find "$stage" -name sluice.pc | head -1)")
[ -f "$pcdir/sluice.pc" ] || fail "no sluice.pc in the staged tree"
for f in bin/sluiced include/sluice/router/sluice.h \
	include/sluice/core/runtime.h include/sluice/io/net.h; do
	[ -e "$stage$prefix/$f" ] || fail "missing $prefix/$f"
done
if find "$stage" -name '*_internal.h' | grep -q .; then
	fail "internal headers were installed"
fi
libdir=$(dirname "$(find "$stage" -name 'libsluice.so.*' | head -1)")
[ -f "$libdir/libsluice.a" ] || fail "no libsluice.a next to libsluice.so"

# pkg-config prefixes every path with the sysroot, as it would for a
# cross build, so the program sees only what was installed.
export PKG_CONFIG_SYSROOT_DIR=$stage PKG_CONFIG_LIBDIR=$pcdir:/usr/lib/x86_64-linux-gnu/pkgconfig:/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig
pkg-config --exists sluice || fail "pkg-config cannot find sluice"
cc -std=c17 -Wall -Wextra -Werror -o "$work/embed" "$src/tests/install/embed.c" \
	$(pkg-config --cflags --libs sluice)
LD_LIBRARY_PATH=$libdir "$work/embed" | grep -qx "embed: ok" ||
	fail "the program linked to libsluice.so failed"
ldd_out=$(LD_LIBRARY_PATH=$libdir ldd "$work/embed")
echo "$ldd_out" | grep -q "libsluice.so.0 => $libdir" ||
	fail "embed is not linked to the staged libsluice.so"

cc -std=c17 -Wall -Wextra -Werror -o "$work/embed-static" \
	"$src/tests/install/embed.c" $(pkg-config --cflags sluice) \
	"$libdir/libsluice.a" $(pkg-config --static --libs-only-l sluice | sed 's/-lsluice//')
"$work/embed-static" | grep -qx "embed: ok" ||
	fail "the program linked to libsluice.a failed"

# The unit, with its ExecStart pointed at the staged daemon so that
# verify can check the command exists.  Any complaint fails the test.
unit=$(find "$stage" -name sluiced.service | head -1)
[ -n "$unit" ] || fail "no sluiced.service installed"
if command -v systemd-analyze >/dev/null; then
	mkdir -p "$work/unit"
	sed "s#$prefix/bin/sluiced#$stage$prefix/bin/sluiced#" "$unit" \
		>"$work/unit/sluiced.service"
	out=$(systemd-analyze verify --man=no "$work/unit/sluiced.service" 2>&1) ||
		fail "systemd-analyze verify: $out"
	[ -z "$out" ] || fail "systemd-analyze verify: $out"
else
	echo "test_install: systemd-analyze not installed; unit not verified"
fi
for key in NoNewPrivileges=yes ProtectSystem=strict PrivateTmp=yes \
	StateDirectory=sluice User=sluice "CapabilityBoundingSet=$"; do
	grep -q "^$key" "$unit" || fail "the unit lacks $key"
done

# The package is built only from a /usr build, the prefix it installs to.
if [ "$prefix" != /usr ]; then
	echo "test_install: prefix $prefix; the package is built from /usr builds"
	exit 0
fi
(cd "$build" && cpack -G DEB -B "$work/pkg" >/dev/null)
deb=$(ls "$work"/pkg/sluice_*.deb)
contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
for f in ./usr/bin/sluiced ./usr/lib/systemd/system/sluiced.service \
	./etc/sluice/sluiced.yaml ./usr/include/sluice/router/sluice.h; do
	echo "$contents" | grep -qx "$f" || fail "the package lacks $f"
done
echo "$contents" | grep -q '/libsluice\.so\.0$' || fail "the package lacks libsluice.so.0"
echo "$contents" | grep -q '/pkgconfig/sluice\.pc$' || fail "the package lacks sluice.pc"
dpkg-deb -e "$deb" "$work/control"
grep -qx /etc/sluice/sluiced.yaml "$work/control/conffiles" ||
	fail "the configuration is not a conffile"
grep -q '^Depends:.*adduser' "$work/control/control" || fail "no Depends on adduser"
grep -q '^Depends:.*liburing' "$work/control/control" || fail "no Depends on liburing"
for s in postinst prerm postrm; do
	[ -x "$work/control/$s" ] || fail "$s missing or not executable"
	sh -n "$work/control/$s" || fail "$s does not parse"
done
grep -q 'adduser --system' "$work/control/postinst" || fail "postinst creates no user"
grep -q 'deluser --system' "$work/control/postrm" || fail "postrm keeps the user on purge"

# The staged configuration is the one the package ships: it must pass
# sluiced's own check.
"$stage$prefix/bin/sluiced" --check --config "$stage/etc/sluice/sluiced.yaml" >/dev/null ||
	fail "the shipped configuration fails sluiced --check"
echo "test_install: ok ($(basename "$deb"))"
