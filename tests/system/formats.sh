#!/usr/bin/env bash
# Stored formats carry versions, and a format this build cannot read is a clear ERROR with a
# SQLSTATE, never a crash or a wrong answer: embedding values (version field at byte 6 of the
# varlena, 0 = the layout since 0.1.0), synthquery values (byte 4, 1), synthivf index pages (the
# header's version, 1; refused at the meta page with a hint to REINDEX) and model checkpoints
# (format version after the magic, 1). Values of the current layout, as 0.1.0 wrote them, read as
# before. Raw values are made by reinterpreting bytea through a cast WITHOUT FUNCTION.
source "$(dirname "$0")/lib.bash"
db=formats
psql -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"

# Runs $1 and checks that it fails with SQLSTATE $2 and a message matching $3.
expect_error() {
    local out
    if out=$(psql -d $db -v VERBOSITY=verbose -c "$1" 2>&1); then
        fail "no error from: $1"
    fi
    grep -q "ERROR:  $2: " <<<"$out" || fail "expected SQLSTATE $2 from: $1; got: $out"
    grep -Eq "$3" <<<"$out" || fail "expected /$3/ from: $1; got: $out"
}

psql -d $db <<'SQL'
CREATE EXTENSION synthsearch;
CREATE CAST (bytea AS embedding) WITHOUT FUNCTION;
CREATE CAST (bytea AS synthquery) WITHOUT FUNCTION;
CREATE CAST (embedding AS bytea) WITHOUT FUNCTION;
SQL

# embedding: dims u16 = 3, version u16 = 0, then 1.0, 2.0, 3.0 (little-endian float4): the 0.1.0 layout
e0='\x030000000000803f0000004000004040'
[ "$(psql -d $db -tA -c "SELECT '$e0'::bytea::embedding::text")" = "[1,2,3]" ] || fail "a 0.1.0 embedding does not read"
[ "$(psql -d $db -tA -c "SELECT '[1,2,3]'::embedding::bytea")" = "$e0" ] || fail "an embedding is not written in the 0.1.0 layout"
expect_error "SELECT '\\x030001000000803f0000004000004040'::bytea::embedding <-> '[1,2,3]'" 0A000 "embedding format version 1 is not supported"
expect_error "SELECT dims('\\x0300ff000000803f0000004000004040'::bytea::embedding)" 0A000 "embedding format version 255"
expect_error "SELECT dims('\\x040000000000803f0000004000004040'::bytea::embedding)" XX001 "claims 4 dimensions"

# synthquery: a stored query's bytes with its format byte (offset 4 of the varlena, 0 of the data) changed
psql -d $db -c "SELECT synth_model_create('formats', '{\"encoder\": {\"image_size\": 16, \"embed_dim\": 8, \"compose_hidden\": 16,
  \"text\": {\"buckets\": 256, \"dim\": 8}}, \"generator\": {\"noise_dim\": 4, \"width\": 8, \"cond_dim\": 16, \"critic_width\": 4}}', 3)" >/dev/null
psql -d $db -c "CREATE TABLE q AS SELECT 'in black leather'::synthquery AS q"
psql -d $db -c "CREATE CAST (synthquery AS bytea) WITHOUT FUNCTION"
raw=$(psql -d $db -tA -c "SELECT encode(q::bytea, 'hex') FROM q")
[ "${raw:0:2}" = 01 ] || fail "a synthquery does not start with format 1: ${raw:0:16}"
[ "$(psql -d $db -tA -c "SELECT synth_query_text('\\x$raw'::bytea::synthquery)")" = "in black leather" ] || fail "a synthquery does not read back"
expect_error "SELECT synth_query_text('\\x02${raw:2}'::bytea::synthquery)" 0A000 "synthquery format version 2 is not supported"
expect_error "SELECT '[1,2,3,4,5,6,7,8]'::embedding <-> '\\x07${raw:2}'::bytea::synthquery" 0A000 "synthquery format version 7"
expect_error "SELECT synth_query_text('\\x01${raw:2:30}'::bytea::synthquery)" XX001 "malformed synthquery"

# model checkpoints: the exported bytes with the format version (u32 after the 8-byte magic) changed
[ "$(psql -d $db -tA -c "SELECT encode(substring(synth_model_export('formats') from 9 for 4), 'hex')")" = 01000000 ] \
    || fail "a checkpoint is not format 1"
[ "$(psql -d $db -tA -c "SELECT synth_model_import(synth_model_export('formats'), 'again') > 0")" = t ] || fail "an exported model does not import"
expect_error "SELECT synth_model_import(overlay(synth_model_export('formats') placing '\\x02000000'::bytea from 9 for 4))" \
    0A000 "model checkpoint format version 2 is not supported"
expect_error "SELECT synth_model_import(substring(synth_model_export('formats') from 1 for 32))" 22P03 "invalid model"

# synthivf: the meta page's version (u16 at offset 4 of the index's area, after the 24-byte page
# header) changed on disk while the server is down
psql -d $db <<'SQL'
CREATE TABLE items AS SELECT i AS id, ARRAY[i, i % 7, 1]::embedding(3) AS emb FROM generate_series(1, 200) i;
CREATE INDEX items_emb ON items USING synthivf (emb) WITH (lists = 4);
CHECKPOINT;
SQL
file=$(psql -d $db -tA -c "SELECT current_setting('data_directory') || '/' || pg_relation_filepath('items_emb')")
as_pg "$PG_BIN/pg_ctl" -D "$REGRESS_DIR/data" -m fast -w stop >/dev/null
on_exit_do+=("as_pg '$PG_BIN/pg_ctl' -D '$REGRESS_DIR/data' -l '$REGRESS_DIR/server.log' -w start >/dev/null 2>&1")
printf '\x02\x00' | dd of="$file" bs=1 seek=28 conv=notrunc status=none
as_pg "$PG_BIN/pg_ctl" -D "$REGRESS_DIR/data" -l "$REGRESS_DIR/server.log" -w start >/dev/null
expect_error "SET enable_seqscan = off; SELECT id FROM items ORDER BY emb <-> '[3,3,1]' LIMIT 3" 0A000 \
    'index "items_emb" has synthivf page format version 2; synthsearch [0-9.]+ reads version 1'
expect_error "INSERT INTO items VALUES (0, '[1,1,1]')" 0A000 "synthivf page format version 2"
expect_error "SELECT * FROM synth_index_check('items_emb')" 0A000 "synthivf page format version 2"
out=$(psql -d $db -v VERBOSITY=verbose -c "SELECT * FROM synth_index_check('items_emb')" 2>&1 || true)
grep -q 'HINT:  REINDEX INDEX "items_emb"' <<<"$out" || grep -q 'DETAIL:  REINDEX INDEX "items_emb"' <<<"$out" || fail "no REINDEX hint: $out"
psql -d $db -c "REINDEX INDEX items_emb"
[ "$(psql -d $db -tA -c "SET enable_seqscan = off; SELECT id FROM items ORDER BY emb <-> '[3,3,1]' LIMIT 1")" = 3 ] || fail "REINDEX did not mend it"
psql -d postgres -c "DROP DATABASE $db"
echo "formats: unreadable embedding, synthquery, checkpoint and index formats are refused with 0A000"
