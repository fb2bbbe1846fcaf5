#!/usr/bin/env bash
# A catalog moves from PostgreSQL 15 to 17. A 15 cluster on this machine gets the catalog of
# tests/major/catalog.sql (an embedding column with a synthivf index, saved synthquery values, a
# model in the registry); 17's pg_dump (PostgreSQL's advice: the newer pg_dump) dumps it from
# inside the Debian root that has 17 (scripts/debian-root.sh), and 17's pg_restore loads it into a
# 17 cluster there, which rebuilds the index. tests/major/queries.sql must then print the same on
# both, and the 17 plans must use the rebuilt index.
#   dump_15_to_17.sh ROOT      (as root; both servers' extension builds are installed first)
set -euo pipefail
cd "$(dirname "$0")/../.."
# As the Makefile has it: tch finds libtorch through the Python environment's torch.
export LIBTORCH_USE_PYTORCH=1 PATH=${SYNTHSEARCH_VENV:-/opt/synthsearch/venv}/bin:$HOME/.cargo/bin:$PATH
root=${1:?give the Debian root that has PostgreSQL 17}
release=trixie
state=.synth/major
in_root() { bash scripts/debian-root.sh run "$release" "$root" "$1"; }
psql15() { /usr/lib/postgresql/15/bin/psql -X -q -v ON_ERROR_STOP=1 -h localhost -U postgres "$@"; }
fail() { echo "dump_15_to_17: $*" >&2; exit 1; }
# Any command that fails names itself (set -e alone ends the script with a bare status).
trap 'echo "dump_15_to_17: line $LINENO: exit $?: $BASH_COMMAND" >&2' ERR

bash scripts/debian-root.sh mount "$release" "$root"
cleanup() {
    local rc=$?
    if [ "$rc" -ne 0 ]; then
        for log in "$state"/pg15/server.log "$state"/pg17/server.log; do
            if [ -f "$log" ]; then echo "--- the end of $log" >&2; tail -n 20 "$log" >&2; fi
        done
    fi
    PG_MAJOR=15 bash scripts/cluster.sh stop "$state/pg15" || true
    in_root "PG_MAJOR=17 bash scripts/cluster.sh stop $state/pg17" || true
    bash scripts/debian-root.sh umount "$release" "$root"
}
trap cleanup EXIT

# Each side's build of this checkout, and a fresh cluster with the library preloaded.
PG_MAJOR=15 bash scripts/install.sh --debug >/dev/null
in_root "PG_MAJOR=17 LIBTORCH_USE_PYTORCH=1 PATH=/opt/synthsearch/venv/bin:\$PATH bash scripts/install.sh --debug >/dev/null"
PG_MAJOR=15 bash scripts/cluster.sh stop "$state/pg15" immediate
in_root "PG_MAJOR=17 bash scripts/cluster.sh stop $state/pg17 immediate"
rm -rf "$state" && mkdir -p "$state"
PG_MAJOR=15 bash scripts/cluster.sh start "$state/pg15" 25351 "shared_preload_libraries = 'synthsearch'"
in_root "PG_MAJOR=17 bash scripts/cluster.sh start $state/pg17 25352 \"shared_preload_libraries = 'synthsearch'\""
p15=$(bash scripts/cluster.sh port "$state/pg15")
# Each side reads the port of the cluster it made.
p17=$(in_root "bash scripts/cluster.sh port $state/pg17")
[ "$(psql15 -p "$p15" -d postgres -tA -c 'SHOW server_version_num')" -lt 160000 ] || fail "the source is not PostgreSQL 15"
[ "$(psql15 -p "$p17" -d postgres -tA -c 'SHOW server_version_num')" -ge 170000 ] || fail "the target is not PostgreSQL 17"

psql15 -p "$p15" -d postgres -c "CREATE DATABASE moved"
psql15 -p "$p15" -d moved -f tests/major/catalog.sql >/dev/null
psql15 -p "$p15" -d moved -tA -f tests/major/queries.sql >"$state/on15.txt"

in_root "/usr/lib/postgresql/17/bin/pg_dump -h localhost -p $p15 -U postgres -Fc -f $state/moved.dump moved"
psql15 -p "$p17" -d postgres -c "CREATE DATABASE moved"
in_root "/usr/lib/postgresql/17/bin/pg_restore -h localhost -p $p17 -U postgres --exit-on-error -d moved $state/moved.dump"
psql15 -p "$p17" -d moved -tA -f tests/major/queries.sql >"$state/on17.txt"

[ "$(grep -c . "$state/on15.txt")" -ge 12 ] || fail "the queries printed too little on 15: $(cat "$state/on15.txt")"
diff -u --label "PostgreSQL 15" --label "PostgreSQL 17 (restored)" "$state/on15.txt" "$state/on17.txt" \
    || fail "the restored catalog answers differently (lines above)"
# The restore rebuilt both indexes, and the queries above went through them.
plan() {
    psql15 -p "$p17" -d moved -tA -c "SET enable_seqscan = off" -c "EXPLAIN (COSTS OFF) $1"
}
p=$(plan "SELECT id FROM products ORDER BY emb <-> (SELECT emb FROM products WHERE id = 7) LIMIT 10")
grep -q "Index Scan using products_emb_idx" <<<"$p" || fail "17 does not use the rebuilt products_emb_idx: $p"
p=$(plan "SELECT id FROM products ORDER BY emb <-> (SELECT q FROM saved_searches WHERE id = 1) LIMIT 10")
grep -q "Index Scan using products_emb_synth" <<<"$p" || fail "17 does not use the rebuilt products_emb_synth: $p"
# Both hold every row with an embedding, as the table has them (amcheck-style, with the heap).
rows=$(psql15 -p "$p17" -d moved -tA -c "SELECT a.live_rows || '/' || b.live_rows || '/' || (SELECT count(emb) FROM products)
    FROM synth_index_check('products_emb_idx', heap => true) a, synth_index_check('products_emb_synth', heap => true) b")
[ "$rows" = "2988/2988/2988" ] || fail "17's rebuilt indexes hold $rows rows (products_emb_idx/products_emb_synth/table)"
echo "dump_15_to_17: $(grep -c . "$state/on15.txt") lines of answers equal on 15 and 17; 17's rebuilt indexes serve them and hold all 2988 rows"
