#!/usr/bin/env bash
# A training job survives server restarts: after a fast restart (the worker saves a checkpoint on
# SIGTERM) and after a crash (immediate stop: the last periodic checkpoint), the launcher resumes
# it and the step count continues instead of starting from 0; a trap in the database's search_path
# never runs with the launcher's or the workers' rights. Needs the library preloaded
# (scripts/test.sh starts the cluster with shared_preload_libraries = 'synthsearch').
source "$(dirname "$0")/lib.bash"
q() { psql -d worker_resume -tA -c "$1"; }
fail() { echo "worker_resume: $*" >&2; q "SELECT job, state, step, attempts, error FROM synth_jobs" >&2 || true; exit 1; }

if [ "$(q "SHOW shared_preload_libraries" 2>/dev/null || psql -d postgres -tA -c 'SHOW shared_preload_libraries')" != synthsearch ]; then
    echo "worker_resume: skipped, the cluster does not preload synthsearch"
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

restart() {
    as_pg "$PG_BIN/pg_ctl" -D "$REGRESS_DIR/data" -m "$1" -w stop >/dev/null
    as_pg "$PG_BIN/pg_ctl" -D "$REGRESS_DIR/data" -l "$REGRESS_DIR/server.log" -w start >/dev/null
}

psql -d postgres -c "DROP DATABASE IF EXISTS worker_resume WITH (FORCE)" -c "CREATE DATABASE worker_resume"
psql -d worker_resume <<'SQL'
CREATE EXTENSION synthsearch;
SELECT current_setting('data_directory') || '/synth_resume_catalog' AS dir \gset
SELECT * FROM synth_generate_catalog(:'dir', 120, 11, 32);
SELECT * FROM synth_import_fashioniq(:'dir', 'images', 'pairs');
SQL
# A trap in the database's default search_path, set by an ordinary role's schema: the launcher's
# resume workers (which connect as a superuser) and the training workers connect with that path,
# and none of its operators may ever run as anyone but that role. This script's own sessions
# keep a safe path.
psql -d worker_resume <<'SQL'
CREATE ROLE resume_attacker LOGIN;
CREATE SCHEMA trap AUTHORIZATION resume_attacker;
SET ROLE resume_attacker;
CREATE TABLE trap.ran (who name);
GRANT USAGE ON SCHEMA trap TO PUBLIC;
GRANT INSERT ON trap.ran TO PUBLIC;
DO $do$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['bigint', 'integer', 'text', 'name', 'oid', 'boolean'] LOOP
        EXECUTE format($f$CREATE FUNCTION trap.eq(a %1$s, b %1$s) RETURNS boolean LANGUAGE plpgsql
            SET search_path = pg_catalog AS $b$ BEGIN INSERT INTO trap.ran VALUES (current_user);
            RETURN a = b; END $b$$f$, t);
        EXECUTE format('CREATE OPERATOR trap.= (LEFTARG = %1$s, RIGHTARG = %1$s, FUNCTION = trap.eq)', t);
    END LOOP;
END $do$;
RESET ROLE;
ALTER DATABASE worker_resume SET search_path = trap, pg_catalog, public;
SQL
export PGOPTIONS="-c search_path=pg_catalog,public"
on_exit_do+=("psql -d postgres -c 'DROP DATABASE IF EXISTS worker_resume WITH (FORCE)' -c 'DROP ROLE IF EXISTS resume_attacker'")
# the trap works: the role's own session with the database's path falls into it
PGOPTIONS= psql -d worker_resume -U resume_attacker -tA -c "SELECT 1 WHERE 'a'::text = 'a'" >/dev/null
[ "$(q "SELECT count(*) FROM trap.ran")" -gt 0 ] || fail "the trap in the database's search_path did not fire"

# The jobs below share a tiny model; each adds its steps, checkpoints and name.
tiny='"image_size": 16, "embed_dim": 16, "encoder_width": 4, "generator_width": 4, "batch": 8,
    "encoder": {"text": {"buckets": 1024, "dim": 16}, "compose_hidden": 16}, "generator": {"cond_dim": 16}'
job=$(q "SELECT synth_train('images', 'pairs', '{$tiny, \"steps\": 3000, \"checkpoint_every\": 25, \"checkpoint_seconds\": 0, \"threads\": 8, \"name\": \"resumed\"}')")

# The steps a resumed worker started from, in order, from the server log.
log_from=$(($(wc -l <"$REGRESS_DIR/server.log") + 1))
resumed_at() {
    { tail -n "+$log_from" "$REGRESS_DIR/server.log" | grep -o "training job $job resumes at step [0-9]*" || true; } | awk '{print $NF}'
}
# Waits (at most a minute) until the log shows the n-th resume.
wait_resumed() {
    local i
    for ((i = 0; i < 300; i++)); do
        [ "$(resumed_at | wc -l)" -ge "$1" ] && return 0
        sleep 0.2
    done
    return 1
}

# 1. A fast restart: SIGTERM, the worker checkpoints where it is and leaves the job running.
wait_for "SELECT step >= 30 FROM synth_jobs WHERE job = $job" 120 || fail "job $job did not start training"
# Before it, reloads while its 8 libtorch threads train: a SIGHUP must reach the worker's main
# thread (pgrx's handler aborts the process on any other: a crash restart of the cluster). Paused
# with the signal pending, every thread wakes at SIGCONT and the first to run would take it.
wpid=$(q "SELECT worker_pid FROM synth_jobs WHERE job = $job")
for ((i = 0; i < 30; i++)); do
    kill -STOP "$wpid"; kill -HUP "$wpid"; kill -CONT "$wpid"
    sleep 0.05
done
at=$(q "SELECT step FROM synth_jobs WHERE job = $job")
wait_for "SELECT step > $at AND worker_pid = $wpid AND attempts = 1 FROM synth_jobs WHERE job = $job" 60 \
    || fail "the training worker did not survive 30 reloads with its threads running (see the server log)"
before=$(q "SELECT step FROM synth_jobs WHERE job = $job")
restart fast
wait_for "SELECT attempts = 2 AND state = 'running' FROM synth_jobs WHERE job = $job" 120 \
    || fail "job $job did not resume after the fast restart"
wait_resumed 1 || fail "the log does not show the resume"
first=$(resumed_at | sed -n 1p)
[ -n "$first" ] && [ "$first" -ge "$before" ] || fail "resumed at step '$first', before the $before steps done"

# 2. A crash: no chance to checkpoint; the job resumes from the last periodic checkpoint.
wait_for "SELECT step >= $first + 60 FROM synth_jobs WHERE job = $job" 120 || fail "job $job stalled"
periodic=$(q "SELECT step FROM synth_train_checkpoints WHERE job = $job")
restart immediate
wait_for "SELECT attempts = 3 FROM synth_jobs WHERE job = $job" 120 || fail "job $job did not resume after the crash"
wait_resumed 2 || fail "the log does not show the second resume"
second=$(resumed_at | sed -n 2p)
[ -n "$second" ] && [ "$second" -ge "$periodic" ] && [ "$second" -gt "$first" ] \
    || fail "resumed at step '$second' after the crash, the checkpoint was at $periodic"
[ $((second % 25)) -eq 0 ] || fail "step $second is not a periodic checkpoint"

# 3. Cancel it, and nothing is left behind.
[ "$(q "SELECT synth_cancel($job)")" = t ] || fail "cancel refused"
wait_for "SELECT state = 'cancelled' FROM synth_jobs WHERE job = $job" 120 || fail "job $job did not stop"
[ "$(q "SELECT count(*) FROM synth_train_checkpoints")" = 0 ] || fail "a cancelled job kept its checkpoint"

# 4. synth_resume() on demand: a job whose worker is gone without a restart (terminated).
job2=$(q "SELECT synth_train('images', 'pairs', '{$tiny, \"steps\": 80, \"checkpoint_every\": 20, \"name\": \"resumed\"}')")
wait_for "SELECT step >= 5 FROM synth_jobs WHERE job = $job2" 120 || fail "job $job2 did not start"
q "SELECT pg_terminate_backend(worker_pid) FROM synth_jobs WHERE job = $job2" >/dev/null
wait_for "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'synthsearch train')" 60 || fail "worker did not stop"
[ "$(q "SELECT state FROM synth_jobs WHERE job = $job2")" = running ] || fail "a terminated worker should leave its job to resume"
[ "$(q "SELECT synth_resume()")" = 1 ] || fail "synth_resume() did not relaunch job $job2"
wait_for "SELECT attempts = 2 FROM synth_jobs WHERE job = $job2" 60 || fail "job $job2 did not restart"
[ "$(q "SELECT synth_resume()")" = 0 ] || fail "synth_resume() relaunched a job that has a worker"
wait_for "SELECT state = 'succeeded' FROM synth_jobs WHERE job = $job2" 120 || fail "job $job2 did not finish after synth_resume()"
[ "$(q "SELECT attempts FROM synth_jobs WHERE job = $job2")" = 2 ] || fail "job $job2 ran more than twice"

# 5. A crash of the worker itself: the postmaster resets every process, restarts the launcher,
#    and the launcher resumes the job.
job3=$(q "SELECT synth_train('images', 'pairs', '{$tiny, \"steps\": 60, \"checkpoint_every\": 10, \"name\": \"resumed\"}')")
wait_for "SELECT step >= 15 FROM synth_jobs WHERE job = $job3" 120 || fail "job $job3 did not start"
kill -9 "$(q "SELECT worker_pid FROM synth_jobs WHERE job = $job3")"
wait_for "SELECT state = 'succeeded' AND attempts = 2 FROM synth_jobs WHERE job = $job3" 180 \
    || fail "job $job3 did not resume after its worker crashed"

# 6. checkpoint_seconds spaces periodic checkpoints in time (each is tens of MB of WAL): with an
#    hour between them, a job well past many checkpoint_every boundaries has kept none.
job4=$(q "SELECT synth_train('images', 'pairs', '{$tiny, \"steps\": 3000, \"checkpoint_every\": 5, \"checkpoint_seconds\": 3600, \"name\": \"spaced\"}')")
wait_for "SELECT step >= 40 FROM synth_jobs WHERE job = $job4" 120 || fail "job $job4 did not start"
[ "$(q "SELECT count(*) FROM synth_train_checkpoints WHERE job = $job4")" = 0 ] \
    || fail "job $job4 kept a periodic checkpoint before checkpoint_seconds had passed"
[ "$(q "SELECT synth_cancel($job4)")" = t ] || fail "cancel of job $job4 refused"
wait_for "SELECT state = 'cancelled' FROM synth_jobs WHERE job = $job4" 120 || fail "job $job4 did not stop"

# 8. A worker that keeps dying without recording an error (each death restarts every session of
#    the cluster) is relaunched a bounded number of times, then its job fails with the reason.
#    No checkpoint in between (an hour between them), so the crashes are in a row.
job5=$(q "SELECT synth_train('images', 'pairs', '{$tiny, \"steps\": 100000, \"checkpoint_seconds\": 3600, \"name\": \"crashing\"}')")
for ((k = 1; k <= 4; k++)); do
    wait_for "SELECT state = 'running' AND attempts = $k AND step >= 2 FROM synth_jobs WHERE job = $job5" 180 \
        || fail "job $job5 was not running its attempt $k"
    kill -9 "$(q "SELECT worker_pid FROM synth_jobs WHERE job = $job5")"
    # the crash restart ends every session: wait until the server answers again
    wait_for "SELECT true" 60 || fail "the server did not come back after the crash"
done
wait_for "SELECT state = 'failed' FROM synth_jobs WHERE job = $job5" 180 \
    || fail "job $job5 was relaunched without bound after its worker crashed 4 times in a row"
error=$(q "SELECT error FROM synth_jobs WHERE job = $job5")
[[ "$error" == *"exited without recording an error 4 times in a row"* ]] || fail "job $job5 failed with: $error"
[ "$(q "SELECT attempts FROM synth_jobs WHERE job = $job5")" = 4 ] || fail "job $job5 ran a fifth time"
echo "worker_resume: a worker killed 4 times in a row: job $job5 failed with \"$error\""

# 7. After every restart, resume and training above, the trap never ran as anyone else.
[ "$(q "SELECT count(*) FROM trap.ran WHERE who <> 'resume_attacker'")" = 0 ] \
    || fail "code in the database's search_path ran as: $(q "SELECT string_agg(DISTINCT who, ', ') FROM trap.ran WHERE who <> 'resume_attacker'")"
