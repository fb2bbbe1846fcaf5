#!/usr/bin/env bash
# Scale-out on Citus, as a shop would run it: a coordinator and two workers on the loopback, a
# products table of 100,000 rows hash-distributed in 4 shards beside a one-node copy of the same
# rows. Checks: models reach the workers (synth_distribute_models) so that the synthivf index
# builds on every shard; the plan is a merge at the coordinator over shard-local index scans with
# the synthquery as a constant; the top 10 of text-only, image+text and embedding queries equal the
# one-node table's with exhaustive probing, and recall at the default knobs is no worse; the
# generator runs once per query, not per shard; synth_index_check works on a shard and
# synth_train on a distributed images table. Skipped when Citus is not installed (make test builds
# it when CITUS_TARBALL names its source tarball).
source "$(dirname "$0")/lib.bash"
if [ ! -f "$("$PG_BIN/pg_config" --sharedir)/extension/citus.control" ]; then
    echo "citus: skipped: Citus is not installed (CITUS_TARBALL=path/to/citus-13.2.2.tar.gz make test builds it)"
    exit 0
fi
source scripts/citus-cluster.bash
dir=$PWD/.synth/citus
on_exit_do+=("citus_down '$dir'")
rm -rf "$dir"
citus_up "$dir" $((REGRESS_PORT + 30))
citus_load 100000
[ "$(on 0 "SELECT count(*) FROM products")" = 100000 ] || fail "the distributed table does not have 100000 rows"

# Before the models are on the workers, an index build on the shards cannot check its encoder.
err=$(on 0 "CREATE INDEX ON products USING synthivf (emb embedding_synth_ops)" 2>&1 || true)
[[ "$err" == *"no model is active"* ]] || fail "index build without models on the workers: $err"
copied=$(on 0 "SELECT count(*) FROM synth_distribute_models() WHERE action LIKE 'copied%'")
[ "$copied" = 2 ] || fail "synth_distribute_models copied to $copied nodes, not 2"
[ "$(on 0 "SELECT string_agg(DISTINCT action, ',') FROM synth_distribute_models()")" = present ] \
    || fail "a second synth_distribute_models copied again"
for n in 1 2; do
    [ "$(on $n "SELECT encoder_version FROM synth_models WHERE active")" = "$(on 0 "SELECT encoder_version FROM synth_models WHERE active")" ] \
        || fail "worker $n has not the coordinator's active encoder"
done
start=$(date +%s%N)
on 0 "CREATE INDEX products_emb_idx ON products USING synthivf (emb embedding_synth_ops)" >/dev/null 2>&1
echo "citus: distributed index built in $(( ($(date +%s%N) - start) / 1000000 )) ms"
on 0 "CREATE INDEX ON local_products USING synthivf (emb embedding_synth_ops)" >/dev/null

# The plan: a merge at the coordinator over a Limit and an index scan on every shard, the
# synthquery a constant in its text form.
plan=$(on 0 "EXPLAIN (COSTS OFF) SELECT id FROM products ORDER BY synth_distance(emb, 'in black leather') LIMIT 10")
grep -q "Custom Scan (Citus Adaptive)" <<<"$plan" || fail "no Citus scan: $plan"
grep -q "Task Count: 4" <<<"$plan" || fail "not one task a shard: $plan"
grep -q "Index Scan using products_emb_idx_[0-9]* on products_[0-9]*" <<<"$plan" || fail "no shard-local index scan: $plan"
grep -q "Order By: (emb <-> 'synthquery:{" <<<"$plan" || fail "the synthquery is not shipped as a constant: $plan"

requests() {  # model server requests on all three nodes
    local n s=0
    for n in 0 1 2; do s=$((s + $(on $n "SELECT coalesce(sum(requests), 0) FROM synth_model_server"))); done
    echo $s
}
ref=$(on 0 "SELECT min(id) FROM images")
# Queries: text only, image + text (the reference from the distributed images table, through a
# CTE so the generator runs once), embedding + text, a plain embedding.
queries=(
    "emb <-> 'in black leather'::synthquery"
    "emb <-> (SELECT q FROM q)"
    "emb <-> synth_query((SELECT emb FROM local_products WHERE id = 7), 'is red')"
    "emb <-> (SELECT emb FROM local_products WHERE id = 12345)"
)
cte="WITH q AS MATERIALIZED (SELECT synth_query(img, 'is solid red') AS q FROM images WHERE id = '$ref')"
top() {  # table query probes -> ids of the top 10
    on 0 "SET citus.propagate_set_commands = 'local'" "BEGIN" "SET LOCAL synthsearch.nprobe = $3" \
        "$cte SELECT string_agg(id::text, ',' ORDER BY r) FROM (SELECT id, row_number() OVER () AS r FROM (SELECT id FROM $1 ORDER BY $2, id LIMIT 10) s) t" "COMMIT" \
        | grep -v '^$' | tail -1
}
for query in "${queries[@]}"; do
    a=$(top products "$query" 32768) b=$(top local_products "$query" 32768)
    [ -n "$a" ] && [ "$a" = "$b" ] || fail "distributed and one-node top 10 differ for $query: $a / $b"
done
echo "citus: top 10 equal to the one-node table's for ${#queries[@]} queries (exhaustive probing)"

# The generator runs once a query: at the coordinator for a bare literal, on the node holding the
# reference image for the CTE form; the shards get the synthquery as a value.
before=$(requests)
on 0 "SELECT id FROM products ORDER BY synth_distance(emb, 'in white cotton') LIMIT 10" >/dev/null
on 0 "$cte SELECT id FROM products ORDER BY emb <-> (SELECT q FROM q) LIMIT 10" >/dev/null
after=$(requests)
[ $((after - before)) = 2 ] || fail "two queries made $((after - before)) model server requests, not 2"

# Recall@10 at the default knobs over 30 embedding queries, against exact search on the one-node table.
recall() {  # table -> recall
    local id hits=0 n=0 truth got
    for id in $(on 0 "SELECT id FROM local_products WHERE id % 3333 = 1 ORDER BY id"); do
        truth=$(on 0 "SELECT id FROM local_products ORDER BY (emb <-> (SELECT emb FROM local_products WHERE id = $id)) + 0 LIMIT 10")
        got=$(on 0 "SELECT id FROM $1 ORDER BY emb <-> (SELECT emb FROM local_products WHERE id = $id) LIMIT 10")
        hits=$((hits + $(comm -12 <(sort <<<"$truth") <(sort <<<"$got") | wc -l))) n=$((n + 10))
    done
    awk -v h=$hits -v n=$n 'BEGIN {printf "%.3f", h / n}'
}
rd=$(recall products) rl=$(recall local_products)
awk -v d="$rd" -v l="$rl" 'BEGIN { exit !(d + 0.02 >= l && d >= 0.8) }' \
    || fail "recall@10 at the default knobs: distributed $rd, one node $rl"
echo "citus: recall@10 at the default knobs: distributed $rd, one node $rl"

# The mission's query on the image column of a distributed table: an expression index on
# synth_encode(img) built on every shard (the workers' encoders), used by the shards' scans, and
# the same top 5 as exact search.
on 0 "CREATE INDEX images_enc_idx ON images USING synthivf (synth_encode(img) embedding_synth_ops) WITH (lists = 4)" >/dev/null
# 120 images: the shards would rather sort 30 rows, so index scans are asked for (SET LOCAL,
# propagated to the shards' transactions).
plan=$(on 0 "SET citus.propagate_set_commands = 'local'" "BEGIN" "SET LOCAL enable_seqscan = off" \
    "EXPLAIN (COSTS OFF) SELECT id FROM images ORDER BY synth_distance(img, 'in black leather') LIMIT 5" "COMMIT")
grep -q "Index Scan using images_enc_idx_[0-9]*" <<<"$plan" || fail "no shard-local expression index scan: $plan"
a=$(on 0 "SET citus.propagate_set_commands = 'local'" "BEGIN" "SET LOCAL synthsearch.nprobe = 4" "SET LOCAL enable_seqscan = off" \
    "SELECT string_agg(id, ',') FROM (SELECT id FROM images ORDER BY synth_distance(img, 'in black leather'), id LIMIT 5) s" "COMMIT" | grep -v '^$' | tail -1)
b=$(on 0 "SELECT string_agg(id, ',') FROM (SELECT id FROM images ORDER BY (synth_encode(img) <-> 'in black leather'::synthquery) + 0, id LIMIT 5) s")
[ -n "$a" ] && [ "$a" = "$b" ] || fail "expression index top 5 differs from exact: $a / $b"

# synth_index_check on a shard (on its worker), and training on a distributed images table.
shard=$(on 1 "SELECT indexrelid::regclass FROM pg_index WHERE indexrelid::regclass::text LIKE 'products_emb_idx_%' LIMIT 1")
[ -n "$shard" ] || fail "no shard index on worker 1"
check=$(on 1 "SELECT live_rows = heap_rows AND orphan_vectors = 0 FROM synth_index_check('$shard', heap => true)")
[ "$check" = t ] || fail "synth_index_check on shard $shard: $check"
job=$(on 0 "SELECT synth_train('images', 'pairs', '{\"image_size\": 16, \"embed_dim\": 16, \"encoder_width\": 4, \"generator_width\": 4,
      \"batch\": 8, \"steps\": 20, \"eval_every\": 0, \"name\": \"citus_trained\"}')")
for ((i = 0; i < 300; i++)); do
    state=$(on 0 "SELECT state FROM synth_jobs WHERE job = $job")
    [[ "$state" == succeeded || "$state" == failed ]] && break
    sleep 0.2
done
[ "$state" = succeeded ] || fail "training on a distributed images table: $state $(on 0 "SELECT error FROM synth_jobs WHERE job = $job")"
echo "citus: ok"
