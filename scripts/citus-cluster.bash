# Sourced by tests/system/citus.sh and scripts/bench-citus.sh: a Citus coordinator and two workers
# on this machine's loopback, each a cluster of scripts/cluster.sh preloading citus and
# synthsearch, with the database `shop`, and the data both compare: a table of products drawn
# from overlapping clusters, once hash-distributed in 4 shards and once on the coordinator alone.
#   citus_up DIR PORT      start (initdb on first use) the three nodes; sets citus_ports
#   citus_down DIR         stop them
#   on NODE SQL...         psql -tA on node 0 (coordinator), 1 or 2, database shop
#   citus_load ROWS        the model, the catalog images and the two product tables

citus_up() {
    local dir=$1 port=$2 i p
    citus_ports=()
    for i in 0 1 2; do
        bash scripts/cluster.sh start "$dir/n$i" $((port + i)) \
            "shared_preload_libraries = 'citus,synthsearch'" "max_worker_processes = 24" \
            "max_connections = 120" "shared_buffers = '256MB'" >/dev/null
        citus_ports+=("$(bash scripts/cluster.sh port "$dir/n$i")")
    done
    for i in 0 1 2; do
        p=${citus_ports[$i]}
        "$PG_BIN/psql" -X -q -h localhost -p "$p" -U postgres -d postgres -tA \
            -c "SELECT 1 FROM pg_database WHERE datname = 'shop'" | grep -q 1 && continue
        "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h localhost -p "$p" -U postgres -d postgres -c "CREATE DATABASE shop"
        on "$i" "CREATE EXTENSION citus" >/dev/null
    done
    if [ "$(on 0 "SELECT count(*) FROM pg_dist_node")" = 0 ]; then
        on 0 "SELECT citus_set_coordinator_host('localhost', ${citus_ports[0]})" >/dev/null
        on 0 "SELECT citus_add_node('localhost', ${citus_ports[1]})" >/dev/null
        on 0 "SELECT citus_add_node('localhost', ${citus_ports[2]})" >/dev/null
    fi
}

citus_down() {
    local i
    for i in 0 1 2; do bash scripts/cluster.sh stop "$1/n$i" >/dev/null 2>&1 || true; done
}

on() {
    local node=$1
    shift
    local args=() sql
    for sql in "$@"; do args+=(-c "$sql"); done
    PGOPTIONS="-c client_min_messages=warning" \
        "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h localhost -p "${citus_ports[$node]}" -U postgres -d shop -tA "${args[@]}"
}

# The extension on every node (Citus propagates CREATE EXTENSION), a small model, the generated
# catalog's images (distributed), and ROWS products of 16 dimensions around overlapping
# centres (200 of them, the noise as wide as their spread, so that lists overlap): `local_products` on the coordinator, `products` in 4 shards, both indexed.
citus_load() {
    local rows=$1
    on 0 "DROP TABLE IF EXISTS products, local_products, images, pairs, centers" \
        "DROP EXTENSION IF EXISTS synthsearch CASCADE" >/dev/null
    on 0 "CREATE EXTENSION synthsearch" \
        "SELECT synth_model_create('shop', '{\"encoder\": {\"image_size\": 16, \"embed_dim\": 16, \"compose_hidden\": 16,
           \"text\": {\"buckets\": 512, \"dim\": 16}}, \"generator\": {\"noise_dim\": 4, \"width\": 8, \"cond_dim\": 16, \"critic_width\": 4}}', 3)" >/dev/null
    on 0 "SELECT * FROM synth_generate_catalog(current_setting('data_directory') || '/citus_catalog', 120, 5, 32)" \
        "SELECT * FROM synth_import_fashioniq(current_setting('data_directory') || '/citus_catalog', 'images', 'pairs')" \
        "SELECT create_distributed_table('images', 'id', shard_count => 4)" \
        "SELECT truncate_local_data_after_distributing_table('images')" >/dev/null 2>&1
    on 0 "SELECT setseed(0.3)" \
        "CREATE TABLE centers AS SELECT k, array_agg(random() - 0.5) AS c FROM generate_series(1, 200) k, generate_series(1, 16) d GROUP BY k" \
        "CREATE TABLE local_products AS
           SELECT i::bigint AS id, l2_normalize((SELECT array_agg(c[d] + 0.5 * (random() - 0.5) ORDER BY d) FROM generate_series(1, 16) d)::embedding) AS emb
           FROM generate_series(1, $rows) i JOIN centers ON k = 1 + i % 200" \
        "CREATE TABLE products (id bigint PRIMARY KEY, emb embedding)" \
        "SELECT create_distributed_table('products', 'id', shard_count => 4)" \
        "INSERT INTO products SELECT * FROM local_products" \
        "VACUUM ANALYZE local_products" "VACUUM ANALYZE products" >/dev/null
}
