//! What the model servers are doing, read from shared memory without waiting on them.

use super::shmem;
use pgrx::prelude::*;
use std::sync::atomic::Ordering;

fn timestamp(t: i64) -> Option<TimestampWithTimeZone> {
    if t == 0 {
        return None;
    }
    // Safety: a TimestampTz the server wrote from GetCurrentTimestamp.
    unsafe { TimestampWithTimeZone::from_datum(pg_sys::Datum::from(t), false) }
}

/// One row per model server: whether it runs, on which device, what it has served.
#[allow(clippy::type_complexity)] // the columns, as pgrx reads them from the signature
#[pg_extern(volatile, parallel_safe)]
fn synth_server_status() -> TableIterator<
    'static,
    (
        name!(server, i32),
        name!(pid, Option<i32>),
        name!(started, Option<TimestampWithTimeZone>),
        name!(device, Option<String>),
        name!(threads, Option<i32>),
        name!(connections, i64),
        name!(queue, i64),
        name!(requests, i64),
        name!(batches, i64),
        name!(mean_batch, Option<f64>),
        name!(errors, i64),
        name!(models, i32),
        name!(model_bytes, i64),
        name!(resident_bytes, i64),
    ),
> {
    let servers = if shmem::available() {
        super::SERVERS.get() as usize
    } else {
        0
    };
    let rows: Vec<_> = (0..servers)
        .filter_map(|i| shmem::server(i).map(|s| (i, s)))
        .map(|(i, s)| {
            let pid = s.pid.load(Ordering::Acquire);
            let info = s.info();
            let running = pid != 0;
            let batches = s.batches.load(Ordering::Relaxed);
            let batched = s.batched.load(Ordering::Relaxed);
            let held = &info.model[..info.models as usize];
            (
                i as i32,
                running.then_some(pid),
                running
                    .then(|| timestamp(s.started.load(Ordering::Relaxed)))
                    .flatten(),
                running.then(|| info.device()),
                running.then_some(info.threads),
                s.clients.load(Ordering::Relaxed) as i64,
                s.queue.load(Ordering::Relaxed) as i64,
                s.requests.load(Ordering::Relaxed) as i64,
                batches as i64,
                (batches > 0).then(|| batched as f64 / batches as f64),
                s.errors.load(Ordering::Relaxed) as i64,
                held.len() as i32,
                held.iter().map(|m| m.bytes as i64).sum(),
                s.rss.load(Ordering::Relaxed) as i64,
            )
        })
        .collect();
    TableIterator::new(rows)
}

/// One row per model a server holds: this database's, and every database's for roles with the
/// privileges of pg_read_all_stats (as pg_stat_activity shows other sessions' queries). For
/// everyone, so the view works for everyone; the filter is here, not only in the view.
#[allow(clippy::type_complexity)] // the columns, as pgrx reads them from the signature
#[pg_extern(volatile, parallel_safe)]
fn synth_server_models() -> TableIterator<
    'static,
    (
        name!(server, i32),
        name!(database, pg_sys::Oid),
        name!(model, i64),
        name!(name, String),
        name!(version, i32),
        name!(bytes, i64),
        name!(requests, i64),
        name!(loaded, Option<TimestampWithTimeZone>),
        name!(last_used, Option<TimestampWithTimeZone>),
    ),
> {
    let servers = if shmem::available() {
        super::SERVERS.get() as usize
    } else {
        0
    };
    // Safety: reads this backend's database and user; has_privs_of_role reads the role caches.
    let (database, every) = unsafe {
        (
            pg_sys::MyDatabaseId.to_u32(),
            pg_sys::has_privs_of_role(
                pg_sys::GetUserId(),
                pg_sys::Oid::from(pg_sys::ROLE_PG_READ_ALL_STATS),
            ),
        )
    };
    let mut rows = Vec::new();
    for i in 0..servers {
        let Some(s) = shmem::server(i) else { continue };
        if s.pid.load(Ordering::Acquire) == 0 {
            continue;
        }
        let info = s.info();
        for m in &info.model[..info.models as usize] {
            if !every && m.database != database {
                continue;
            }
            rows.push((
                i as i32,
                pg_sys::Oid::from(m.database),
                m.id,
                m.name(),
                m.version,
                m.bytes as i64,
                m.requests as i64,
                timestamp(m.loaded_at),
                timestamp(m.last_used),
            ));
        }
    }
    TableIterator::new(rows)
}

pgrx::extension_sql!(
    r#"
-- synth_model_server: one row per model server (synthsearch.mode = server): its process, device,
-- connections with a channel, requests waiting, requests served, batches and their mean size,
-- errors returned, models held and its resident memory.
CREATE VIEW synth_model_server AS SELECT * FROM @extschema@.synth_server_status();
-- synth_model_server_models: the models each server holds; other databases' models only for
-- roles with pg_read_all_stats (synth_server_models() itself filters them, so anyone may run it).
CREATE VIEW synth_model_server_models AS
    SELECT m.server, d.datname AS database, m.model, m.name, m.version, m.bytes, m.requests,
           m.loaded, m.last_used
    FROM @extschema@.synth_server_models() m
    LEFT JOIN pg_catalog.pg_database d ON d.oid OPERATOR(pg_catalog.=) m.database
    WHERE m.database OPERATOR(pg_catalog.=) (SELECT oid FROM pg_catalog.pg_database
                                             WHERE datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
       OR pg_catalog.pg_has_role('pg_read_all_stats', 'MEMBER');
GRANT SELECT ON synth_model_server, synth_model_server_models TO PUBLIC;
-- Revoked, then granted again: a fresh install's privileges then equal those of 0.1.0 updated
-- (sql/synthsearch--0.1.0--0.2.0.sql), whose first form of this function was revoked.
REVOKE ALL ON FUNCTION synth_server_models() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION synth_server_models() TO PUBLIC;
"#,
    name = "server_views",
    requires = [synth_server_status, synth_server_models]
);
