#!/usr/bin/env bash
# The model server (synthsearch.mode = server, the default when preloaded), tried as users and a
# DBA would: many connections at once get exactly the answers the in-backend mode gives, and the
# server batched them; a cancel and a statement_timeout while waiting work at once; a server that
# exits mid-request is an ERROR in the waiting backend (never a hang) and the next request works
# after the postmaster restarts it; kill -9 of the server mid-request (the postmaster then restarts
# every process) leaves the waiting client with an error, not a hang; activating another model is
# seen without a restart; bad input keeps its SQLSTATE; only a superuser picks the mode.
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
on_exit_do+=("kill -CONT \$(cat $work/stopped 2>/dev/null) 2>/dev/null"
    "psql -d postgres -c 'ALTER SYSTEM RESET synthsearch.server_batch_wait' -c 'SELECT pg_reload_conf()' >/dev/null")

psql -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "DROP ROLE IF EXISTS server_user" -c "CREATE DATABASE $db"
psql -d $db <<'SQL'
CREATE EXTENSION synthsearch;
SELECT current_setting('data_directory') || '/synth_server_catalog' AS dir \gset
SELECT * FROM synth_generate_catalog(:'dir', 120, 5, 32);
SELECT * FROM synth_import_fashioniq(:'dir', 'images', 'pairs');
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
state() { psql -d $db -tA -v VERBOSITY=sqlstate -c "$1" 2>&1 | grep -o '[0-9][0-9A-Z]\{4\}' | tail -1; }
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
[ "$(psql -d $db -U server_user -tA -c "SELECT count(*) FROM synth_server_models()" 2>&1 | grep -c 'permission denied')" = 1 ] \
    || fail "an ordinary role reads other databases' models"

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

psql -d postgres -c "DROP DATABASE $db WITH (FORCE)" -c "DROP ROLE server_user" >/dev/null
echo "model_server: ok"
