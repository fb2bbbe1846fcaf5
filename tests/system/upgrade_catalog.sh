#!/usr/bin/env bash
# Upgrade scripts are complete: for every frozen install script of an earlier release
# (sql/synthsearch--A.sql), CREATE EXTENSION synthsearch VERSION 'A' followed by ALTER EXTENSION
# synthsearch UPDATE must leave the same catalog as a fresh CREATE EXTENSION of this version (the
# script cargo pgrx generates). Compared is a normalized listing of every object the extension owns,
# with its definition (tests/system/extension_catalog.sql), not the scripts' text. A difference is a
# step missing from (or wrong in) sql/synthsearch--A--B.sql: its header says how to add one.
# The databases are made one after the other, and the roles each made are dropped between them:
# roles are cluster-wide, so an upgrade that forgot a CREATE ROLE would otherwise go unseen.
source "$(dirname "$0")/lib.bash"

current=$(psql -d postgres -tA -c "SELECT default_version FROM pg_available_extensions WHERE name = 'synthsearch'")
[ -n "$current" ] || fail "synthsearch is not installed"
roles_before=$(psql -d postgres -tA -c "SELECT array_agg(rolname)::text FROM pg_roles")

# Lists the extension's catalog in database $1 into file $2, then drops the database and the roles
# created since the test began.
listing() {
    psql -d "$1" -v roles_before="$roles_before" -tA -f tests/system/extension_catalog.sql >"$2"
    psql -d postgres -c "DROP DATABASE $1"
    local r
    for r in $(psql -d postgres -tA -c "SELECT quote_ident(rolname) FROM pg_roles WHERE rolname <> ALL ('$roles_before'::text[])"); do
        psql -d postgres -c "DROP ROLE $r"
    done
}

psql -d postgres -c "DROP DATABASE IF EXISTS upgrade_catalog" -c "CREATE DATABASE upgrade_catalog"
psql -d upgrade_catalog -c "CREATE EXTENSION synthsearch VERSION '$current'"
listing upgrade_catalog "$work/fresh.txt"
[ "$(grep -c '^member ' "$work/fresh.txt")" -gt 50 ] || fail "the listing of a fresh install is too short: $(wc -l <"$work/fresh.txt") lines"

checked=0
for script in sql/synthsearch--*.sql; do
    old=$(basename "$script" .sql)
    old=${old#synthsearch--}
    # install scripts only (synthsearch--A.sql), not upgrade scripts (synthsearch--A--B.sql)
    [[ $old == *--* || $old == "$current" ]] && continue
    psql -d postgres -c "CREATE DATABASE upgrade_catalog"
    psql -d upgrade_catalog -c "CREATE EXTENSION synthsearch VERSION '$old'" -c "ALTER EXTENSION synthsearch UPDATE"
    got=$(psql -d upgrade_catalog -tA -c "SELECT extversion FROM pg_extension WHERE extname = 'synthsearch'")
    [ "$got" = "$current" ] || fail "ALTER EXTENSION UPDATE from $old ended at version $got, not $current"
    listing upgrade_catalog "$work/from-$old.txt"
    if ! diff -u --label "fresh $current" --label "$old, then ALTER EXTENSION UPDATE" "$work/fresh.txt" "$work/from-$old.txt"; then
        fail "$old + upgrade scripts differ from a fresh $current install (lines above: - fresh only, + upgraded only); see the header of sql/synthsearch--*--$current.sql"
    fi
    echo "$test_name: $old -> $current: $(wc -l <"$work/fresh.txt") catalog lines identical"
    checked=$((checked + 1))
done
[ "$checked" -gt 0 ] || fail "no frozen install script of an earlier release in sql/"
