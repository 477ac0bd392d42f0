#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds chatto_<version>_<arch>.deb with dpkg-deb from a staged tree (called by `make deb`):
#   packaging/build-deb.sh CHATTO_BINARY GENDOC OUTDIR
# CHATTO_BINARY is the already built binary (make deb builds it with dpkg-buildflags), GENDOC the key-table
# generator that also writes etc/chatto.ini. Prints the path of the .deb on its last line.
#
# Why not debhelper: the binary is already built and tested by the Makefile, so dpkg-buildpackage would
# only copy the source tree, compile it a second time and need debhelper installed on every CI run. What dh
# would add for us is small and written out here: strip, gzip the man pages and changelog, md5sums, conffiles,
# dpkg-shlibdeps for Depends, and the systemd snippets in the maintainer scripts.
set -eu

die() { echo "build-deb: $*" >&2; exit 1; }

[ $# -eq 3 ] || die "usage: $0 CHATTO_BINARY GENDOC OUTDIR"
bin=$1 gendoc=$2 outdir=$3
root=$(cd "$(dirname "$0")/.." && pwd)
deb=$root/packaging/debian
[ -x "$bin" ] || die "$bin: not an executable"
[ -x "$gendoc" ] || die "$gendoc: not an executable"

version=$(dpkg-parsechangelog -l "$deb/changelog" -S Version)
upstream=$(cat "$root/VERSION")
case $version in
"$upstream"-*) ;;
*) die "packaging/debian/changelog is at $version but VERSION says $upstream: add a changelog entry" ;;
esac
arch=$(dpkg --print-architecture)
# file times and the changelog's date make the same source give the same .deb
SOURCE_DATE_EPOCH=$(dpkg-parsechangelog -l "$deb/changelog" -S Timestamp)
export SOURCE_DATE_EPOCH

# the copyright file carries LICENSE's text in DEP-5 form; fail when the two drift apart
# (LICENSE: title, blank, copyright line, blank, then the text; copyright: the text follows the second
# "License: Expat", the stand-alone licence paragraph)
mkdir -p "$outdir"
tail -n +5 "$root/LICENSE" | sed -e 's/^$/./' -e 's/^/ /' >"$outdir/license.dep5"
awk 'p { print } /^License: Expat$/ && ++n == 2 { p = 1 }' "$deb/copyright" |
    diff -u "$outdir/license.dep5" - >&2 || die "packaging/debian/copyright no longer matches LICENSE"
rm -f "$outdir/license.dep5"

umask 022
work=$outdir/deb
st=$work/debian/chatto
rm -rf "$work"
mkdir -p "$st/DEBIAN"

# the program, stripped as dh_strip does it
install -D -m 0755 "$bin" "$st/usr/bin/chatto"
strip --remove-section=.comment --remove-section=.note --strip-unneeded "$st/usr/bin/chatto"

# web client: the binary finds it at ../share/chatto/web relative to itself
mkdir -p "$st/usr/share/chatto/web"
cp -RL "$root/web/." "$st/usr/share/chatto/web/" # -L: web/vendor is a link to third_party/web
find "$st/usr/share/chatto/web" -type d -exec chmod 0755 {} + -o -type f -exec chmod 0644 {} +

# the configuration, a dpkg conffile: etc/chatto.ini as `make docs` generates it (every key at its default,
# commented out), with the data in /var/lib/chatto and core.secrets_file pointing at /etc/chatto/secrets.env.
# It holds no secrets, so dpkg may prompt about it on upgrades and operators may edit it freely; postinst
# generates the secrets into /etc/chatto/secrets.env, which is not a conffile (Debian policy 10.7.3: maintainer
# scripts must not edit conffiles), and sets this file to root:chatto 0640 with dpkg-statoverride. chatto reads
# secrets.env itself (core.secrets_file), so `sudo -u chatto chatto user ...` gets the service's secrets and
# they are not in the service's environment.
install -d "$st/etc/chatto"
"$gendoc" ini | sed -e 's|^#data_dir = "\./data"$|data_dir = "/var/lib/chatto"|' \
    -e 's|^#secrets_file = ""$|secrets_file = "/etc/chatto/secrets.env"|' >"$st/etc/chatto/chatto.ini"
[ "$(grep -c '^data_dir = "/var/lib/chatto"$' "$st/etc/chatto/chatto.ini")" -eq 1 ] ||
    die "gendoc ini no longer has the line '#data_dir = \"./data\"'; update the sed in $0"
[ "$(grep -c '^secrets_file = "/etc/chatto/secrets.env"$' "$st/etc/chatto/chatto.ini")" -eq 1 ] ||
    die "gendoc ini no longer has the line '#secrets_file = \"\"'; update the sed in $0"
chmod 0644 "$st/etc/chatto/chatto.ini"
echo /etc/chatto/chatto.ini >"$st/DEBIAN/conffiles"

# bookworm's systemd still looks in /lib (usrmerge moves it later)
install -D -m 0644 "$root/packaging/systemd/chatto.service" "$st/lib/systemd/system/chatto.service"

install -d "$st/usr/share/man/man1" "$st/usr/share/man/man5"
gzip -9n <"$root/man/chatto.1" >"$st/usr/share/man/man1/chatto.1.gz"
gzip -9n <"$root/man/chatto.ini.5" >"$st/usr/share/man/man5/chatto.ini.5.gz"

doc=$st/usr/share/doc/chatto
install -d "$doc"
install -m 0644 "$deb/copyright" "$doc/copyright"
install -m 0644 "$deb/README.Debian" "$doc/README.Debian"
gzip -9n <"$deb/changelog" >"$doc/changelog.Debian.gz"
# the API reference (README's "From a bot or script"); compressed, as policy 12.3 asks of docs over 4 KB
gzip -9n <"$root/docs/api.md" >"$doc/api.md.gz"
chmod 0644 "$doc/changelog.Debian.gz" "$doc/api.md.gz" "$st/usr/share/man/man1/chatto.1.gz" "$st/usr/share/man/man5/chatto.ini.5.gz"

install -D -m 0644 "$deb/chatto.lintian-overrides" "$st/usr/share/lintian/overrides/chatto"

for s in postinst prerm postrm; do
    install -m 0755 "$deb/chatto.$s" "$st/DEBIAN/$s"
done

# Depends: the libraries from dpkg-shlibdeps (it wants a debian/control beside the staged tree; an empty
# one will do, because all it reads there is which packages the source builds)
: >"$work/debian/control"
shlibs=$(cd "$work" && dpkg-shlibdeps -O -e debian/chatto/usr/bin/chatto 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || die "dpkg-shlibdeps found no libraries"
# libvips is loaded at run time (dlopen in lib/assets/resize.c), so dpkg-shlibdeps cannot see it: add what its
# package's shlibs file asks of a program using its soname
vipsdir=$(pkg-config --variable=libdir vips) || die "pkg-config does not know libvips"
vipsso=$(objdump -p "$vipsdir/libvips.so" | awk '/SONAME/ { print $2 }')
vipspkg=$(dpkg -S "$vipsdir/$vipsso" | sed -n '1s/:.*//p')
vipsdep=$(cat /var/lib/dpkg/info/"$vipspkg"*.shlibs 2>/dev/null | awk -v m="${vipsso##*.so.}" '$1 == "libvips" && $2 == m { $1 = ""; $2 = ""; sub(/^ +/, ""); print; exit }')
[ -n "$vipsdep" ] || die "cannot tell which package provides $vipsso"
shlibs="$shlibs, $vipsdep"
size=$(du -k -s --exclude=DEBIAN "$st" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@INSTALLED_SIZE@|$size|" -e "s|@SHLIBS@|$shlibs|" \
    "$deb/control" >"$st/DEBIAN/control"

# md5sums leaves the conffiles out, as dh_md5sums does: dpkg keeps their sums in its own database
conffiles=$(sed 's|^/||' "$st/DEBIAN/conffiles")
(cd "$st" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | LC_ALL=C sort |
    grep -v -x -F "$conffiles" | xargs md5sum) >"$st/DEBIAN/md5sums"
chmod 0644 "$st/DEBIAN/control" "$st/DEBIAN/md5sums" "$st/DEBIAN/conffiles"
find "$st" -newermt "@$SOURCE_DATE_EPOCH" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

out=$outdir/chatto_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$st" "$out" >/dev/null
echo "$out"
