#!/usr/bin/env bash
# A streaming standby of the regress cluster (pg_basebackup -R) replays synthivf's WAL: after
# a build, inserts, deletes and VACUUM on the primary, every replayed page equals the primary's
# (wal_consistency_checking), the standby answers the same index scans with the same rows, and
# its copy of the index passes synth_index_check.
source "$(dirname "$0")/lib.bash"
STANDBY_PORT=$((REGRESS_PORT + 11))
chown postgres: "$work" 2>/dev/null || true
# The standby listens on a Unix socket in $work only: a TCP port can be taken at any moment by a
# client connection's ephemeral port, which made this test fail once.
standby=(-h "$work" -p "$STANDBY_PORT" -U postgres)
on_exit_do+=('as_pg "$PG_BIN/pg_ctl" -D "$work/data" -m immediate -w stop >/dev/null 2>&1')
P() { psql "$@"; }
S() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "${standby[@]}" "$@"; }

P -d postgres -c "DROP DATABASE IF EXISTS idx_standby" -c "CREATE DATABASE idx_standby"
P -d idx_standby <<'SQL'
CREATE EXTENSION synthsearch;
CREATE TABLE items (id int PRIMARY KEY, emb embedding(8));
INSERT INTO items SELECT i, (SELECT array_agg(sin(i * 0.7 + d * 1.3) * 5) FROM generate_series(1, 8) d)::embedding
FROM generate_series(1, 4000) i;
CREATE INDEX items_emb ON items USING synthivf (emb) WITH (lists = 16);
SQL
as_pg "$PG_BIN/pg_basebackup" "${conn[@]}" -D "$work/data" -R -X stream --checkpoint=fast
printf "port = %s\nlisten_addresses = ''\nunix_socket_directories = '%s'\nhot_standby = on\n" "$STANDBY_PORT" "$work" \
    | as_pg tee -a "$work/data/postgresql.conf" >/dev/null
if ! as_pg "$PG_BIN/pg_ctl" -D "$work/data" -l "$work/standby.log" -w start >/dev/null; then
    # The log goes with the temporary folder: show its end first.
    tail -n 40 "$work/standby.log" >&2 || true
    fail "the standby did not start"
fi

# Changes after the base backup reach the standby only as WAL. With wal_consistency_checking the
# primary adds a full image of every page a generic WAL record (synthivf's) touches, and the
# standby compares the page its replay produced with it: a record that does not redo exactly what
# the primary did stops the standby ("inconsistent page found").
P -d idx_standby <<'SQL'
SET wal_consistency_checking = 'generic';
INSERT INTO items SELECT i, (SELECT array_agg(cos(i * 0.3 + d) * 5) FROM generate_series(1, 8) d)::embedding
FROM generate_series(4001, 6000) i;
DELETE FROM items WHERE id % 5 = 0;
VACUUM items;
-- Rows whose vectors go into the slots VACUUM freed (the lists' free chains), then 400 deleted
-- again, so 4800 stay.
INSERT INTO items SELECT i, (SELECT array_agg(sin(i * 0.9 + d * 0.4) * 5) FROM generate_series(1, 8) d)::embedding
FROM generate_series(6001, 6400) i;
DELETE FROM items WHERE id > 6000;
VACUUM items;
CREATE INDEX items_cos ON items USING synthivf (emb embedding_cosine_ops) WITH (lists = 8);
SQL
lsn=$(P -d idx_standby -tA -c "SELECT pg_current_wal_lsn()")
for _ in $(seq 1 60); do
    done=$(S -d idx_standby -tA -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn" 2>/dev/null || echo f)
    [ "$done" = t ] && break
    sleep 1
done
[ "$done" = t ] || fail "the standby did not replay up to $lsn in 60 s"

S -d idx_standby -tA -c "SELECT pg_is_in_recovery()" | grep -qx t || fail "not a standby"
queries=$(cat <<'SQL'
SET enable_seqscan = off;
SET synthsearch.nprobe = 4;
SELECT string_agg(id::text, ',') FROM (SELECT id FROM items ORDER BY emb <-> (SELECT emb FROM items WHERE id = 4321) LIMIT 10) s;
SELECT string_agg(id::text, ',') FROM (SELECT id FROM items ORDER BY emb <=> '[1,0,0,0,0,0,0,1]' LIMIT 10) s;
SELECT string_agg(id::text, ',') FROM (SELECT id FROM items WHERE id % 7 = 1 ORDER BY emb <-> '[0,0,0,0,0,0,0,0]' LIMIT 10) s;
SELECT count(*) FROM (SELECT id FROM items ORDER BY emb <-> '[1,1,1,1,1,1,1,1]' LIMIT 100000) s;
SQL
)
a=$(P -d idx_standby -tA <<<"$queries")
b=$(S -d idx_standby -tA <<<"$queries")
[ -n "$a" ] && [ "$a" = "$b" ] || fail "answers differ: primary [$a], standby [$b]"
echo "$a" | tail -1 | grep -qx 4800 || fail "expected 4800 rows through the index, got $(echo "$a" | tail -1)"
# Locks above RowExclusiveLock are refused during recovery: check the index alone there.
S -d idx_standby -tA -c "SELECT live_rows FROM synth_index_check('items_emb', heap => false)" | grep -qx 4800 \
    || fail "standby index check"
S -d idx_standby -tA -c "SELECT live_rows FROM synth_index_check('items_cos', heap => false)" | grep -qx 4800 \
    || fail "standby cosine index check"
as_pg "$PG_BIN/pg_ctl" -D "$work/data" -m fast -w stop >/dev/null
P -d postgres -c "DROP DATABASE idx_standby"
