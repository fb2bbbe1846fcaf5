# Sourced by the benchmark scripts. Sets PG_BIN, ROOT (the repository, also the working folder)
# and work (a temporary folder), and defines bench_cluster DIR PORT [CONF...]: starts that cluster
# with scripts/cluster.sh (CONF lines go to postgresql.conf on its first start), sets BENCH_PORT to
# the port it listens on and the array psql to a client for it, and on exit stops it and removes $work;
# and bench_catalog DB PRODUCTS SEED IMAGES PAIRS: a generated catalog (64x64 PNG) imported into
# DB's tables IMAGES and PAIRS through a temporary folder the server writes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PG_MAJOR=${PG_MAJOR:-15}
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

bench_cluster() {
    local dir=$1 port=$2
    shift 2
    # A cluster's data belongs to one major version: another than 15 gets its own folder.
    [ "$PG_MAJOR" = 15 ] || dir=$dir-$PG_MAJOR
    bash "$ROOT/scripts/cluster.sh" start "$dir" "$port" "$@"
    # the next free port if that one was taken when the cluster was made
    port=$(bash "$ROOT/scripts/cluster.sh" port "$dir")
    BENCH_PORT=$port
    # shellcheck disable=SC2064 # expand dir and work now
    trap "rm -rf '$work'; bash '$ROOT/scripts/cluster.sh' stop '$dir'" EXIT
    psql=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h localhost -p "$port" -U postgres)
}

bench_catalog() {
    local db=$1 products=$2 seed=$3 images=$4 pairs=$5 dir
    dir=$(mktemp -d /tmp/synthsearch-bench-XXXXXX)
    chown postgres: "$dir"
    "${psql[@]}" -d "$db" >/dev/null \
        -c "SELECT * FROM synth_generate_catalog('$dir', $products, $seed, 64)" \
        -c "SELECT * FROM synth_import_fashioniq('$dir', '$images', '$pairs')"
    rm -rf "$dir"
}
