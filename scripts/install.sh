#!/usr/bin/env bash
# Installs the extension without disturbing a running server.
#   install.sh [--debug]   (release build by default)
#
# `cargo pgrx install` rewrites synthsearch.so in place; a server that has the library mapped (every
# backend that used it, and the postmaster when it is preloaded) then runs over changed or truncated
# pages and crashes. Here the package is built into a staging folder (.synth/package-PROFILE), and
# every file is copied to a temporary name in its target directory and renamed over the old one:
# the rename is atomic, processes keep the old file they mapped, and new backends load the new one.
# The library goes first, the SQL scripts next and the control file (the default version) last, so a
# CREATE EXTENSION that sees the new version finds the library that goes with it.
#
# Besides what `cargo pgrx package` makes (the library, the control file, the generated install
# script of this version and the upgrade scripts sql/synthsearch--A--B.sql), the frozen install
# scripts of earlier releases (sql/synthsearch--A.sql) are shipped, so CREATE EXTENSION ... VERSION
# 'A' works and tests can install an old release and update it.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_MAJOR=${PG_MAJOR:-15}
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}

profile=release flags=()
case "${1:-}" in
--debug) profile=debug flags=(--debug) ;;
--release | "") ;;
*) echo "usage: $0 [--debug|--release]" >&2; exit 2 ;;
esac

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

stage=$PWD/.synth/package-$profile
rm -rf "$stage"
cargo pgrx package --pg-config "$PG_CONFIG" "${flags[@]}" --out-dir "$stage" >&2

libdir=$("$PG_CONFIG" --pkglibdir)
extdir=$("$PG_CONFIG" --sharedir)/extension
[ -f "$stage$libdir/synthsearch.so" ] || { echo "install: no synthsearch.so in $stage$libdir" >&2; exit 1; }
for f in sql/synthsearch--*.sql; do
    [ -f "$f" ] && cp "$f" "$stage$extdir/"
done

# Copies $1 to a temporary name beside $2, then renames it over $2.
replace() {
    local src=$1 dest=$2 mode=$3 tmp
    as_root mkdir -p "$(dirname "$dest")"
    tmp=$(dirname "$dest")/.$(basename "$dest").new.$$
    as_root cp "$src" "$tmp"
    as_root chmod "$mode" "$tmp"
    as_root mv -f "$tmp" "$dest"
    echo "installed $dest"
}

# Library (and anything else under the library folder), scripts, then the control file.
while IFS= read -r -d '' f; do
    replace "$f" "${f#"$stage"}" 755
done < <(find "$stage$libdir" -type f -print0 | sort -z)
while IFS= read -r -d '' f; do
    replace "$f" "${f#"$stage"}" 644
done < <(find "$stage" -type f ! -path "$stage$libdir/*" ! -name '*.control' -print0 | sort -z)
while IFS= read -r -d '' f; do
    replace "$f" "${f#"$stage"}" 644
done < <(find "$stage" -type f -name '*.control' -print0 | sort -z)
