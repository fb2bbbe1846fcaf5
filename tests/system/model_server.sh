#!/usr/bin/env bash
# The model server (synthsearch.mode = server, the default when preloaded), tried as users and a
# DBA would: many connections at once get exactly the answers the in-backend mode gives, and the
# server batched them; a cancel and a statement_timeout while waiting work at once; a server that
# exits mid-request is an ERROR in the waiting backend (never a hang) and the next request works
# after the postmaster restarts it; kill -9 of the server mid-request (the postmaster then restarts
# every process) leaves the waiting client with an error, not a hang; activating another model is
# seen without a restart; bad input keeps its SQLSTATE; only a superuser picks the mode.
# And what a connection must not be able to do to the others: get another model's answer when more
# models are in use than the server holds; make the server read or allocate an oversize request;
# kill it with a panic; make it grow with connections and cancels; hold up every connection with
# one long request (or keep it busy after a cancel); read other databases' models. Errors come
# back whole (detail, hint) with a context line naming the server.
# Needs the library preloaded (scripts/test.sh starts the cluster so).
source "$(dirname "$0")/lib.bash"
db=model_server
q() { psql -d $db -tA -c "$1"; }

if [ "$(psql -d postgres -tA -c 'SHOW shared_preload_libraries')" != synthsearch ]; then
    echo "model_server: skipped, the cluster does not preload synthsearch"
    exit 0
fi

# Waits (at most $2 seconds) until the query $1 returns t.
wait_for() {
    local i
    for ((i = 0; i < $2 * 5; i++)); do
        [ "$(q "$1" 2>/dev/null || true)" = t ] && return 0
        sleep 0.2
    done
    return 1
}
server_pid() { q "SELECT pid FROM synth_model_server WHERE server = 0"; }
server_counter() { q "SELECT $1 FROM synth_model_server WHERE server = 0"; }
other=${db}_other
on_exit_do+=("kill -CONT \$(cat $work/stopped 2>/dev/null) 2>/dev/null"
    "psql -d postgres -c 'ALTER SYSTEM RESET synthsearch.server_batch_wait' -c 'ALTER SYSTEM RESET synthsearch.server_models' -c 'ALTER SYSTEM RESET synthsearch.server_max_batch' -c 'SELECT pg_reload_conf()' >/dev/null"
    "psql -d postgres -c 'DROP DATABASE IF EXISTS $other WITH (FORCE)' >/dev/null")
# A tiny model's configuration (image_size 16), as every model here is made.
config='{"encoder": {"image_size": 16, "embed_dim": 16, "compose_hidden": 16, "text": {"buckets": 512, "dim": 16}},
         "generator": {"noise_dim": 4, "width": 8, "cond_dim": 16, "critic_width": 4}}'

psql -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "DROP DATABASE IF EXISTS $other WITH (FORCE)" \
    -c "DROP ROLE IF EXISTS server_user" -c "CREATE DATABASE $db"
psql -d $db <<'SQL'
CREATE EXTENSION synthsearch;
SELECT current_setting('data_directory') || '/synth_server_catalog' AS dir \gset
SELECT * FROM synth_generate_catalog(:'dir', 120, 5, 32);
SELECT * FROM synth_import_fashioniq(:'dir', 'images', 'pairs');
-- Larger images (128x128) for the long batches below: decoding them makes a pass last.
SELECT current_setting('data_directory') || '/synth_server_catalog_big' AS dir \gset
SELECT * FROM synth_generate_catalog(:'dir', 40, 7, 128);
SELECT * FROM synth_import_fashioniq(:'dir', 'images_big', 'pairs_big');
SELECT synth_model_create('server_a', '{"encoder": {"image_size": 16, "embed_dim": 16, "compose_hidden": 16,
  "text": {"buckets": 512, "dim": 16}}, "generator": {"noise_dim": 4, "width": 8, "cond_dim": 16, "critic_width": 4}}', 3);
CREATE TABLE wishes (wish text);
INSERT INTO wishes VALUES ('in black leather'), ('is red and has short sleeves'), ('is blue and striped');
CREATE TABLE answers (mode text, id text, wish text, q embedding, e embedding);
CREATE ROLE server_user LOGIN;
GRANT SELECT ON images, wishes TO server_user;
SQL
[ "$(q "SHOW synthsearch.mode")" = server ] || fail "the default mode of a preloaded library is not server"
[ "$(q "SELECT pid > 0 FROM synth_model_server WHERE server = 0")" = t ] || fail "no model server runs"

# The in-backend answers, one connection.
q "SET synthsearch.mode = backend;
   INSERT INTO answers SELECT 'backend', i.id, w.wish, synth_query_embedding(synth_query(i.img, w.wish)), synth_encode(i.img)
   FROM images i, wishes w WHERE i.id IN (SELECT id FROM images ORDER BY id LIMIT 24)" >/dev/null
# The same work from 12 connections at once through the server, which waits up to 20 ms to batch.
psql -d postgres -c "ALTER SYSTEM SET synthsearch.server_batch_wait = 20000" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
before=$(q "SELECT requests || ' ' || batches FROM synth_model_server WHERE server = 0")
pids=()
for ((k = 0; k < 12; k++)); do
    q "INSERT INTO answers SELECT 'server', i.id, w.wish, synth_query_embedding(synth_query(i.img, w.wish)), synth_encode(i.img)
       FROM images i, wishes w WHERE i.id IN (SELECT id FROM images ORDER BY id LIMIT 2 OFFSET $((2 * k)))" >/dev/null &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent connection failed"; done
psql -d postgres -c "ALTER SYSTEM RESET synthsearch.server_batch_wait" -c "SELECT pg_reload_conf()" >/dev/null
read -r requests batches < <(q "SELECT requests || ' ' || batches FROM synth_model_server WHERE server = 0")
read -r requests0 batches0 <<<"$before"
served=$((requests - requests0)) passes=$((batches - batches0))
# 24 products x 3 wishes: 72 queries; 24 distinct images encoded 3 times (the memo saves none:
# each row is its own call) = 144 requests, far fewer passes.
[ "$served" -ge 144 ] || fail "the server served $served requests, not at least 144"
[ "$passes" -lt "$served" ] || fail "no batching: $passes forward passes for $served requests"
diff=$(q "SELECT count(*) || ' ' || coalesce(max(greatest(b.q <-> s.q, b.e <-> s.e)), -1) FROM answers b JOIN answers s USING (id, wish)
          WHERE b.mode = 'backend' AND s.mode = 'server'")
read -r pairs worst <<<"$diff"
[ "$pairs" = 72 ] || fail "compared $pairs answers, not 72"
awk -v w="$worst" 'BEGIN { exit !(w >= 0 && w < 1e-5) }' || fail "server answers differ from the in-backend ones by $worst"
echo "model_server: 12 connections, $served requests in $passes forward passes, answers within $worst of the in-backend mode's"

# The same top 10 for a text-only, an image+text and an embedding query in both modes.
for query in "'in black leather'::synthquery" \
    "synth_query((SELECT img FROM images ORDER BY id LIMIT 1), 'is red')" \
    "synth_query((SELECT synth_encode(img) FROM images ORDER BY id DESC LIMIT 1), 'is blue')"; do
    top="SELECT string_agg(id, ',') FROM (SELECT id FROM answers WHERE mode = 'backend' ORDER BY e <-> $query, id LIMIT 10) t"
    a=$(q "$top") b=$(q "SET synthsearch.mode = backend; $top")
    [ -n "$a" ] && [ "$a" = "$b" ] || fail "top 10 differs between modes for $query: $a / $b"
done

# Reloads while libtorch's threads run: a SIGHUP must reach the server's main thread (pgrx's
# handler aborts the process on any other, and the postmaster then restarts the whole cluster).
# Paused (SIGSTOP) with the signal pending, every thread wakes at SIGCONT and the first to run
# would take it; with 8 threads and queries in flight, 30 rounds.
psql -d postgres -c "ALTER SYSTEM SET synthsearch.server_threads = 8" -c "SELECT pg_reload_conf()" >/dev/null
on_exit_do+=("psql -d postgres -c 'ALTER SYSTEM RESET synthsearch.server_threads' -c 'SELECT pg_reload_conf()' >/dev/null")
wait_for "SELECT threads = 8 FROM synth_model_server WHERE server = 0" 10 || fail "server_threads = 8 was not applied"
pid=$(server_pid)
q "SELECT count(*) FROM (SELECT synth_encode(img) FROM images) s" >/dev/null
busy=()
for ((k = 0; k < 3; k++)); do
    q "SELECT count(*) FROM (SELECT synth_query(img, 'is red') FROM images, generate_series(1, 3)) s" >/dev/null &
    busy+=($!)
done
for ((i = 0; i < 30; i++)); do
    kill -STOP "$pid" && echo "$pid" >"$work/stopped"
    kill -HUP "$pid"
    kill -CONT "$pid"; rm -f "$work/stopped"
    sleep 0.05
done
for p in "${busy[@]}"; do wait "$p" || fail "a query failed while the server took reloads"; done
[ "$(server_pid)" = "$pid" ] || fail "the server did not survive 30 reloads with its threads running (see the server log)"
[ "$(q "SELECT synth_query_text('is teal'::synthquery)")" = "is teal" ] || fail "no answer after the reloads"
echo "model_server: 30 SIGHUPs to a paused server with 8 libtorch threads and queries in flight: same server, still answering"

# Bad input keeps its SQLSTATE through the server; an ordinary role uses the server but cannot
# pick the mode.
state() { psql -d $db -tA -v VERBOSITY=sqlstate -c "$1" 2>&1 | grep -o '^ERROR:  [0-9A-Z]\{5\}$' | tail -1 | cut -c9-; }
[ "$(state "SELECT synth_encode('\\x0102'::bytea)")" = 22P03 ] || fail "a bad image is not 22P03 through the server"
[ "$(state "SELECT synth_query((SELECT img FROM images LIMIT 1), '   ')")" = 22023 ] || fail "an empty wish is not 22023"
[ "$(state "SELECT synth_query('[1,2,3]'::embedding, 'is red')")" = 22000 ] || fail "a short reference embedding is not 22000"
[ "$(psql -d $db -U server_user -tA -c "SELECT synth_query_text('in black leather'::synthquery)")" = "in black leather" ] \
    || fail "an ordinary role cannot query through the server"
[ "$(psql -d $db -U server_user -tA -v VERBOSITY=sqlstate -c "SET synthsearch.mode = backend" 2>&1 | grep -o '[0-9][0-9A-Z]\{4\}')" = 42501 ] \
    || fail "an ordinary role may change synthsearch.mode"

# Another model activated: the next query uses it, without a restart; the server holds both.
second=$(q "SELECT synth_model_create('server_b', '{\"encoder\": {\"image_size\": 16, \"embed_dim\": 16, \"compose_hidden\": 16,
  \"text\": {\"buckets\": 512, \"dim\": 16}}, \"generator\": {\"noise_dim\": 4, \"width\": 8, \"cond_dim\": 16, \"critic_width\": 4}}', 4)")
q "SELECT synth_model_activate($second, true)" >/dev/null
[ "$(q "SELECT synth_query_model('in black leather'::synthquery) = $second")" = t ] || fail "the active model's switch is not seen"
[ "$(q "SELECT count(*) FROM synth_model_server_models WHERE database = current_database() AND name IN ('server_a', 'server_b')")" = 2 ] \
    || fail "the server does not list both models"

# synth_model_server_models for everyone: an ordinary role reads its own database's models through
# the view (and the function), never another database's; a superuser sees both.
psql -d postgres -c "CREATE DATABASE $other" >/dev/null
psql -d $other -tA -v config="$config" >/dev/null <<'SQL'
CREATE EXTENSION synthsearch;
SELECT synth_model_create('server_other', :'config', 5);
SELECT synth_query_text('in black leather'::synthquery);
SQL
[ "$(q "SELECT count(*) FROM synth_model_server_models WHERE database = '$other'")" = 1 ] \
    || fail "a superuser does not see the other database's model"
mine="count(*) FILTER (WHERE database = current_database()) || ' ' || count(*) FILTER (WHERE database IS DISTINCT FROM current_database())"
seen=$(psql -d $db -U server_user -tA -c "SELECT $mine FROM synth_model_server_models" 2>&1)
[ "$seen" = "2 0" ] || fail "an ordinary role reading synth_model_server_models: '$seen' (want its 2 models and no other database's)"
seen=$(psql -d $db -U server_user -tA -c "SELECT $mine FROM (SELECT d.datname AS database FROM synth_server_models() m
                                                           LEFT JOIN pg_database d ON d.oid = m.database) s" 2>&1)
[ "$seen" = "2 0" ] || fail "an ordinary role calling synth_server_models(): '$seen' (want its 2 models and no other database's)"
echo "model_server: an ordinary role reads its database's 2 models in synth_model_server_models, and not the other database's"

# Errors come back whole: the SQLSTATE, message and hint the in-backend mode raises, and a context
# line naming the server. A model whose checkpoint a newer release wrote (its format version
# changed in place) fails to load with a hint in both modes.
newer=$(q "SELECT synth_model_create('server_newer', '$config', 6)")
q "UPDATE synth_model_parts SET bytes = overlay(bytes PLACING '\x63000000'::bytea FROM 9 FOR 4)
   WHERE model = $newer AND part = (SELECT min(part) FROM synth_model_parts WHERE model = $newer)" >/dev/null
lines() { psql -d $db -tA -v VERBOSITY=verbose -c "$1" 2>&1 | grep -E '^(ERROR|DETAIL|HINT|CONTEXT):' || true; }
encode_newer="SELECT synth_encode(img, '$newer') FROM images ORDER BY id LIMIT 1"
served=$(lines "$encode_newer")
alone=$(lines "SET synthsearch.mode = backend; $encode_newer")
grep -q '^ERROR:  0A000: model checkpoint format version 99 is not supported' <<<"$alone" || fail "backend mode: $alone"
grep -q '^HINT:  ' <<<"$alone" || fail "backend mode gives no hint: $alone"
[ "$(grep -v '^CONTEXT:' <<<"$served")" = "$alone" ] || fail "the server's error differs from the in-backend one: $served / $alone"
grep -qx 'CONTEXT:  while served by synthsearch model server 0' <<<"$served" || fail "no context line naming the server: $served"
grep -qx 'CONTEXT:  while served by synthsearch model server 0' <<<"$(lines "SELECT synth_encode('\x0102'::bytea)")" \
    || fail "a bad image's error has no context line naming the server"
echo "model_server: a server's ERROR carries its SQLSTATE, message and hint as the in-backend mode's, with: $(grep CONTEXT <<<"$served")"

# A panic while serving a request (decoding, a model call, PNG encoding, loading) is that request's
# ERROR (XX000) and the server lives on. A debug build's decoder panics on a test image.
panic_image="convert_to('synthsearch test: an image that panics the decoder', 'UTF8')"
pid=$(server_pid)
if [ "$(state "SELECT synth_encode($panic_image)")" = 22P03 ]; then
    echo "model_server: panics: skipped (a release build has no test image that panics)"
else
    for query in "SELECT synth_encode($panic_image)" \
        "SELECT synth_encode_batch(ARRAY[(SELECT img FROM images ORDER BY id LIMIT 1), $panic_image])" \
        "SELECT synth_query($panic_image, 'is red')" \
        "SELECT count(*) FROM synth_walk($panic_image, 'is red', 'is blue', 2)"; do
        [ "$(state "$query")" = XX000 ] || fail "a panic in the server is not XX000: $query"
    done
    [ "$(server_pid)" = "$pid" ] || fail "a panic while serving a request killed the server"
    [ "$(q "SELECT synth_query_text('is teal'::synthquery)")" = "is teal" ] || fail "no answer after the panics"
    echo "model_server: 4 requests that panicked the server each got XX000; the same server answers"
fi

# Requests are bounded before they are read: one over the server's limit (two images at the
# decoder's 32 MiB and 1 MiB) is refused by the backend with 54000 naming the limit (the
# in-backend mode refuses the image with 54000 too); a synth_encode_batch longer than a request
# may be goes in parts, with the same answers and an error naming the image's position in the
# whole call.
limit=$((2 * 32 * 1024 * 1024 + 1024 * 1024))
huge="SELECT synth_encode(convert_to(repeat('x', $((limit + 1000))), 'UTF8'))"
out=$(psql -d $db -tA -v VERBOSITY=verbose -c "$huge" 2>&1 || true)
grep -q "^ERROR:  54000: a request of [0-9]* bytes is more than the model server's limit of $limit bytes" <<<"$out" \
    || fail "an oversize request: $out"
[ "$(state "SET synthsearch.mode = backend; $huge")" = 54000 ] || fail "the in-backend mode does not refuse the huge image with 54000"
q "CREATE TABLE padded AS SELECT row_number() OVER (ORDER BY id) AS k, img || convert_to(repeat('x', 20000000), 'UTF8') AS img
   FROM (SELECT id, img FROM images ORDER BY id LIMIT 4) i;
   CREATE TABLE batch_answers (mode text, k bigint, e embedding)" >/dev/null
batch="INSERT INTO batch_answers SELECT current_setting('synthsearch.mode'), k, e
       FROM unnest((SELECT synth_encode_batch(array_agg(img ORDER BY k)) FROM padded)) WITH ORDINALITY AS u(e, k)"
q "$batch" >/dev/null
q "SET synthsearch.mode = backend; $batch" >/dev/null
[ "$(q "SELECT count(*) || ' ' || (max(s.e <-> b.e) < 1e-5) FROM batch_answers s JOIN batch_answers b USING (k)
        WHERE s.mode = 'server' AND b.mode = 'backend'")" = "4 true" ] \
    || fail "a batch of 80 MB in parts differs from the in-backend answers"
bad_last="SELECT synth_encode_batch(array_agg(img ORDER BY k) || '\x0102'::bytea) FROM padded"
a=$(lines "$bad_last" | grep ERROR) b=$(lines "SET synthsearch.mode = backend; $bad_last" | grep ERROR)
[[ "$a" == "ERROR:  22P03: image 5: "* ]] && [ "$a" = "$b" ] || fail "a bad image in a batch's second part: '$a', in-backend '$b'"
echo "model_server: a $((limit + 1000))-byte request refused before sending ($limit at most); an 80 MB batch in parts answers as the in-backend mode"

# Every request is answered by the model it asked for, whatever other connections make the server
# load and evict: the server holds 1 model; two connections encode with 3 models in turn, a third
# with one; every answer equals the in-backend mode's for its model, and none fails.
psql -d postgres -c "ALTER SYSTEM SET synthsearch.server_models = 1" -c "SELECT pg_reload_conf()" >/dev/null
models=()
for seed in 11 12 13; do models+=("$(q "SELECT synth_model_create('server_rr$seed', '$config', $seed)")"); done
list="ARRAY[${models[0]},${models[1]},${models[2]}]::bigint[]"
q "CREATE TABLE rr (mode text, model bigint, id text, e embedding)" >/dev/null
for m in "${models[@]}"; do
    q "SET synthsearch.mode = backend; INSERT INTO rr SELECT 'backend', $m, id, synth_encode(img, '$m') FROM images" >/dev/null
done
pids=()
for k in 0 1; do
    q "INSERT INTO rr SELECT 'server', m, id, synth_encode(img, m::text)
       FROM (SELECT i.id, i.img, ($list)[(row_number() OVER (ORDER BY i.id, g) + $k) % 3 + 1] AS m
             FROM images i, generate_series(1, 3) g) s" >/dev/null &
    pids+=($!)
done
q "INSERT INTO rr SELECT 'server', ${models[0]}, id, synth_encode(img, '${models[0]}') FROM images, generate_series(1, 3)" >/dev/null &
pids+=($!)
errors=0
for p in "${pids[@]}"; do wait "$p" || errors=$((errors + 1)); done
read -r compared wrong < <(q "SELECT count(*) || ' ' || count(*) FILTER (WHERE NOT s.e <-> b.e < 1e-5) FROM rr s JOIN rr b USING (model, id)
                             WHERE s.mode = 'server' AND b.mode = 'backend'")
echo "model_server: server_models = 1, 3 connections, 3 models: $compared answers compared, $wrong mismatches, $errors connections failed"
[ "$errors" = 0 ] || fail "$errors connections failed with more models in use than the server holds"
[ "$compared" = 1080 ] || fail "compared $compared answers, not 1080"
[ "$wrong" = 0 ] || fail "$wrong answers came from another model"
[ "$(server_counter models)" = 1 ] || fail "the server holds $(server_counter models) models, not server_models = 1"
psql -d postgres -c "ALTER SYSTEM RESET synthsearch.server_models" -c "SELECT pg_reload_conf()" >/dev/null

# A long request does not hold up the others: with one image a pass, a synth_encode_batch of 4080
# images is served a pass at a time, and another connection's synth_encode, sent while it runs,
# comes back before the batch's last pass (the server's pass count, read by that connection right
# after its answer, is below the batch's). A cancelled batch stops the server's work on it: paused
# (SIGSTOP) mid-batch, the backend cancelled, then resumed, the server makes at most the pass it
# was in.
psql -d postgres -c "ALTER SYSTEM SET synthsearch.server_max_batch = 1" -c "SELECT pg_reload_conf()" >/dev/null
q "CREATE TABLE big_batch AS SELECT array_agg(img) AS imgs FROM (SELECT img FROM images_big, generate_series(1, 102) g) s" >/dev/null
sleep 0.5
passes=$(server_counter batches)
psql -d $db -tA -c "SELECT cardinality(synth_encode_batch(imgs)) FROM big_batch" >"$work/batch.out" 2>&1 &
batch=$!
wait_for "SELECT batches > $passes + 20 FROM synth_model_server WHERE server = 0" 60 || fail "the batch did not start"
read -r answered by_then <<<"$(psql -d $db -tA -c "SELECT synth_encode(img) IS NOT NULL FROM images ORDER BY id LIMIT 1" \
    -c "SELECT batches - $passes FROM synth_model_server WHERE server = 0" | tr '\n' ' ')"
[ "$answered" = t ] || fail "no answer beside the batch"
[ "$by_then" -le 4080 ] || fail "a synth_encode sent while a batch ran came back after the batch's 4080 passes ($by_then)"
wait $batch || fail "the batch failed: $(cat "$work/batch.out")"
[ "$(cat "$work/batch.out")" = 4080 ] || fail "the batch gave $(cat "$work/batch.out")"
echo "model_server: a synth_encode sent while a synth_encode_batch of 4080 images ran (a pass each) came back after $by_then passes"

passes=$(server_counter batches)
psql -d $db -tA -v VERBOSITY=sqlstate -c "SELECT cardinality(synth_encode_batch(imgs)) FROM big_batch" >"$work/cancel.out" 2>&1 &
batch=$!
wait_for "SELECT batches > $passes + 20 FROM synth_model_server WHERE server = 0" 60 || fail "the batch did not start"
pid=$(server_pid)
kill -STOP "$pid" && echo "$pid" >"$work/stopped"
at_stop=$(server_counter batches)
q "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%synth_encode_batch(imgs)%' AND pid <> pg_backend_pid()" >/dev/null
wait $batch && fail "the batch was not cancelled"
grep -q 57014 "$work/cancel.out" || fail "the cancelled batch: $(cat "$work/cancel.out")"
kill -CONT "$pid"; rm -f "$work/stopped"
last=-1 now=$(server_counter batches)
for ((i = 0; i < 20 && now != last; i++)); do sleep 0.5; last=$now now=$(server_counter batches); done
[ "$now" = "$last" ] || fail "the server's passes keep growing after the batch was cancelled"
[ $((now - at_stop)) -le 1 ] || fail "the server made $((now - at_stop)) passes for a cancelled batch"
echo "model_server: after cancelling a batch with $((4080 - (at_stop - passes))) images left, the server made $((now - at_stop)) more passes"

# Memory stays flat: the server's resident memory before and after 1000 connections that make one
# request each, and after 1000 requests cancelled mid-batch by statement_timeout (the channel is
# closed at the cancel, the server drops it, and both sides free the queues' handles).
resident() { sleep 2.5; server_counter resident_bytes; }
q "CREATE TABLE cancel_batch AS SELECT array_agg(img) AS imgs FROM (SELECT img FROM images_big, generate_series(1, 25) g) s" >/dev/null
before=$(resident)
pids=()
for ((k = 0; k < 4; k++)); do
    for ((i = 0; i < 250; i++)); do
        echo '\c'
        echo "SELECT synth_encode(img) IS NOT NULL FROM images WHERE id = (SELECT min(id) FROM images);"
    done | psql -d $db -tA >/dev/null &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a connection's request failed"; done
connected=$(resident)
requests=$(server_counter requests)
cancelled=$({
    echo "SET statement_timeout = 30;"
    for ((i = 0; i < 1000; i++)); do echo "SELECT cardinality(synth_encode_batch(imgs)) FROM cancel_batch;"; done
} | "$PG_BIN/psql" -X -q "${conn[@]}" -d $db -tA 2>&1 | grep -c 'canceling statement due to statement timeout' || true)
after=$(resident)
reached=$(($(server_counter requests) - requests))
mb() { echo $(($1 / 1048576)); }
echo "model_server: server resident memory $(mb "$before") MB before, $(mb "$connected") MB after 1000 connections, $(mb "$after") MB after $cancelled cancelled requests ($reached of them reached the server whole)"
[ "$cancelled" = 1000 ] || fail "$cancelled of 1000 requests were cancelled"
[ $((after - before)) -lt $((50 * 1048576)) ] || fail "the server grew by $(mb $((after - before))) MB"
[ "$(server_counter connections)" -le 2 ] || fail "the server still holds $(server_counter connections) channels"
psql -d postgres -c "ALTER SYSTEM RESET synthsearch.server_max_batch" -c "SELECT pg_reload_conf()" >/dev/null

# A cancel while waiting works at once: the server is paused (SIGSTOP) so the request waits.
pid=$(server_pid)
kill -STOP "$pid" && echo "$pid" >"$work/stopped"
start=$(date +%s%N)
out=$(psql -d $db -tA -v VERBOSITY=sqlstate -c "SET statement_timeout = 300" -c "SELECT synth_query_text('is green'::synthquery)" 2>&1 || true)
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[[ "$out" == *57014* ]] || fail "statement_timeout while waiting for the server: $out"
[ "$ms" -lt 5000 ] || fail "statement_timeout took $ms ms to end the wait"
echo "model_server: statement_timeout = 300 ms ended a wait on a paused server after $ms ms"

# The server exits while a request waits (SIGTERM, then it runs again): an ERROR, not a hang, and
# the postmaster starts it again.
psql -d $db -tA -v VERBOSITY=verbose -c "SELECT synth_query_text('is purple'::synthquery)" >"$work/waiting.out" 2>&1 &
waiter=$!
sleep 0.5
kill -TERM "$pid"; kill -CONT "$pid"; rm -f "$work/stopped"
for ((i = 0; i < 50; i++)); do kill -0 $waiter 2>/dev/null || break; sleep 0.2; done
kill -0 $waiter 2>/dev/null && fail "the waiting backend hangs after the server exited"
wait $waiter && fail "the request succeeded although the server exited under it"
grep -q "58000.*model server 0 exited while serving this request" "$work/waiting.out" \
    || fail "unexpected error when the server exited: $(cat "$work/waiting.out")"
wait_for "SELECT pid > 0 AND pid <> $pid FROM synth_model_server WHERE server = 0" 15 || fail "the server was not restarted"
[ "$(q "SELECT synth_query_text('is purple'::synthquery)")" = "is purple" ] || fail "no answer after the server's restart"
echo "model_server: a server exiting mid-request gave the waiting backend an ERROR; the restarted server answers"

# kill -9 of the server mid-request: the postmaster restarts every process (as for any crash of a
# process attached to shared memory); the waiting client gets an error, never a hang, and the
# next connection is answered by a new server.
pid=$(server_pid)
kill -STOP "$pid" && echo "$pid" >"$work/stopped"
psql -d $db -tA -c "SELECT synth_query_text('is orange'::synthquery)" >"$work/killed.out" 2>&1 &
waiter=$!
sleep 0.5
kill -KILL "$pid"; rm -f "$work/stopped"
for ((i = 0; i < 100; i++)); do kill -0 $waiter 2>/dev/null || break; sleep 0.2; done
kill -0 $waiter 2>/dev/null && fail "the waiting client hangs after kill -9 of the server"
wait $waiter && fail "the request succeeded although the server was killed under it"
wait_for "SELECT pid > 0 FROM synth_model_server WHERE server = 0" 60 || fail "no server after the crash restart"
[ "$(q "SELECT synth_query_text('is orange'::synthquery)")" = "is orange" ] || fail "no answer after the crash restart"
echo "model_server: kill -9 mid-request ended the wait with: $(head -1 "$work/killed.out")"

psql -d postgres -c "DROP DATABASE $db WITH (FORCE)" -c "DROP DATABASE $other WITH (FORCE)" -c "DROP ROLE server_user" >/dev/null
echo "model_server: ok"
