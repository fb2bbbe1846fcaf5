#!/usr/bin/env bash
# Builds and installs Citus (the distributed engine the scale-out tests run) from its source
# tarball, for the PostgreSQL of PG_MAJOR; nothing to do when that version is already installed.
#   bash scripts/citus.sh path/to/citus-13.2.2.tar.gz     (or CITUS_TARBALL=...)
# Citus is AGPL: it is built and run beside this project, never copied into it.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_MAJOR=${PG_MAJOR:-15}
PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
tarball=${1:-${CITUS_TARBALL:?a Citus source tarball (CITUS_TARBALL or the first argument)}}
[ -f "$tarball" ] || { echo "citus.sh: $tarball does not exist" >&2; exit 1; }
version=$(basename "$tarball" .tar.gz)
version=${version#citus-}
control=$("$PG_CONFIG" --sharedir)/extension/citus.control
# citus.control names the extension's version as MAJOR.MINOR-N (13.2-1 for 13.2.x).
if [ -f "$($PG_CONFIG --pkglibdir)/citus.so" ] && grep -q "default_version = '${version%.*}-" "$control" 2>/dev/null; then
    echo "citus $version is installed"
    exit 0
fi
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
pkgs=()
for p in libzstd-dev liblz4-dev libkrb5-dev libicu-dev; do
    dpkg -s "$p" >/dev/null 2>&1 || pkgs+=("$p")
done
if [ ${#pkgs[@]} -gt 0 ]; then
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
tar -xzf "$tarball" -C "$src"
cd "$src"/citus-*
# Newer minor releases of PostgreSQL 15 export have_createdb_privilege(), which this Citus release
# also defines for older ones: keep the server's.
if grep -q "have_createdb_privilege" "$($PG_CONFIG --includedir-server)/commands/dbcommands.h"; then
    sed -i 's/^have_createdb_privilege(void)$/citus_unused_have_createdb_privilege(void)/' src/include/pg_version_compat.h
fi
echo "citus.sh: building Citus $version for PostgreSQL $PG_MAJOR"
./configure --without-libcurl PG_CONFIG="$PG_CONFIG" >configure.log 2>&1 || { tail -20 configure.log; exit 1; }
make -j"$(nproc)" >make.log 2>&1 || { grep -E "error|Error [0-9]" make.log | grep -v -- "-Werror" | head -20; exit 1; }
as_root make install >install.log 2>&1 || { tail -20 install.log; exit 1; }
echo "citus $version installed"
