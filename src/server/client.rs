//! The backend's side: a channel to the model server (a DSM segment with two `shm_mq`s, made on
//! first use and kept for the session), "send the request, wait for the reply", and the one
//! exchange a backend adds: the weights of a model the server does not hold yet.
//!
//! Waiting is a latch loop that checks for interrupts (a cancel or statement_timeout ends it at
//! once) and that the server still runs (its exit ends it with an ERROR, never a hang). A request
//! left half-done by an ERROR leaves the channel unusable; the next request makes a new one.

use super::message::{ModelKey, Reply, Request};
use super::shmem::{self, Server};
use crate::fmgr::error;
use crate::model::registry::ModelRow;
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use std::cell::RefCell;
use std::sync::atomic::Ordering;

/// Bytes of each queue. Longer messages (an image, a model's weights) pass through in pieces.
pub const QUEUE_BYTES: usize = 256 * 1024;

struct Channel {
    segment: *mut pg_sys::dsm_segment,
    send: *mut pg_sys::shm_mq_handle,
    receive: *mut pg_sys::shm_mq_handle,
    server: usize,
    generation: u32,
    /// Set while a request is in flight: still set at the next request means the last one was
    /// cut short (an ERROR, a cancel), and the queues may hold half a message.
    busy: bool,
}

impl Channel {
    /// Detaches the segment, which tells the server through the queues' detach callbacks. Not a
    /// Drop: at process exit PostgreSQL has detached every segment before thread-locals die.
    fn close(self) {
        if let Some(slot) = shmem::my_slot() {
            slot.handle.store(0, Ordering::Release);
        }
        // Safety: the segment was made by this backend and is still mapped (pinned).
        unsafe { pg_sys::dsm_detach(self.segment) };
    }
}

/// Clears this backend's slot when it exits, so no server looks for its segment again.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn clear_slot(_code: i32, _arg: pg_sys::Datum) {
    if let Some(slot) = shmem::my_slot() {
        slot.handle.store(0, Ordering::Release);
    }
}

thread_local! {
    static CHANNEL: RefCell<Option<Channel>> = const { RefCell::new(None) };
}

fn not_running(server: usize) -> ! {
    pgrx::ereport!(
        ERROR,
        PgSqlErrorCode::ERRCODE_CANNOT_CONNECT_NOW,
        format!("the synthsearch model server {server} is not running"),
        "The postmaster restarts it within seconds; if it keeps failing, its log says why. \
         synthsearch.mode = backend runs the models in this connection instead."
    );
}

fn gone(server: usize) -> ! {
    pgrx::ereport!(
        ERROR,
        PgSqlErrorCode::ERRCODE_SYSTEM_ERROR,
        format!("the synthsearch model server {server} exited while serving this request"),
        "Retry: the postmaster restarts the server. Its log says why it exited."
    );
}

/// Sleeps on this backend's latch until woken or `ms` passed, then takes interrupts.
fn wait(ms: i64) {
    // Safety: MyLatch is this backend's latch; WL_EXIT_ON_PM_DEATH ends the backend if the
    // postmaster is gone.
    unsafe {
        pg_sys::WaitLatch(
            pg_sys::MyLatch,
            (pg_sys::WL_LATCH_SET | pg_sys::WL_TIMEOUT | pg_sys::WL_EXIT_ON_PM_DEATH) as i32,
            ms as std::ffi::c_long,
            pg_sys::PG_WAIT_EXTENSION,
        );
        pg_sys::ResetLatch(pg_sys::MyLatch);
    }
    pgrx::check_for_interrupts!();
}

/// The server this backend uses, once it runs: (index, entry, generation, PGPROC number).
fn running_server() -> (usize, &'static Server, u32, i32) {
    let servers = super::SERVERS.get().max(1) as usize;
    let index = shmem::my_procno().unwrap_or(0) % servers;
    let Some(server) = shmem::server(index) else {
        not_running(index)
    };
    // A server starts with the postmaster and again a second after it exits: wait that long.
    for _ in 0..100 {
        if server.pid.load(Ordering::Acquire) != 0 {
            return (
                index,
                server,
                server.generation.load(Ordering::Acquire),
                server.procno.load(Ordering::Acquire),
            );
        }
        wait(100);
    }
    not_running(index)
}

fn open(index: usize, generation: u32, procno: i32) -> Channel {
    let Some(slot) = shmem::my_slot() else {
        error(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            "this process has no slot for the synthsearch model server",
        )
    };
    let server = shmem::proc_of(procno);
    static REGISTERED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !REGISTERED.swap(true, Ordering::Relaxed) {
        // Safety: registers a callback with this backend's exit.
        unsafe { pg_sys::before_shmem_exit(Some(clear_slot), pg_sys::Datum::from(0)) };
    }
    // Safety: a new segment with two queues, this backend the sender of the first and the
    // receiver of the second, the server the other end of each; the mapping is pinned so it
    // outlives the transaction, and the channel detaches it when dropped.
    unsafe {
        let segment = pg_sys::dsm_create(2 * QUEUE_BYTES, 0);
        pg_sys::dsm_pin_mapping(segment);
        let base = pg_sys::dsm_segment_address(segment).cast::<u8>();
        let requests = pg_sys::shm_mq_create(base.cast(), QUEUE_BYTES);
        let replies = pg_sys::shm_mq_create(base.add(QUEUE_BYTES).cast(), QUEUE_BYTES);
        pg_sys::shm_mq_set_sender(requests, pg_sys::MyProc);
        pg_sys::shm_mq_set_receiver(requests, server);
        pg_sys::shm_mq_set_sender(replies, server);
        pg_sys::shm_mq_set_receiver(replies, pg_sys::MyProc);
        let old = pg_sys::MemoryContextSwitchTo(pg_sys::TopMemoryContext);
        let send = pg_sys::shm_mq_attach(requests, segment, std::ptr::null_mut());
        let receive = pg_sys::shm_mq_attach(replies, segment, std::ptr::null_mut());
        pg_sys::MemoryContextSwitchTo(old);
        let channel = Channel {
            segment,
            send,
            receive,
            server: index,
            generation,
            busy: false,
        };
        slot.server.store(index as u32, Ordering::Relaxed);
        slot.generation.store(generation, Ordering::Relaxed);
        slot.handle
            .store(pg_sys::dsm_segment_handle(segment), Ordering::Release);
        channel
    }
}

/// One round trip: sends `request`, waits for the reply.
fn round_trip(request: &Request) -> Reply {
    let bytes = request.to_bytes();
    let (index, server, generation, procno) = running_server();
    CHANNEL.with_borrow_mut(|slot| {
        if slot
            .as_ref()
            .is_some_and(|c| c.busy || c.server != index || c.generation != generation)
            && let Some(old) = slot.take()
        {
            old.close();
        }
        let channel = slot.get_or_insert_with(|| open(index, generation, procno));
        channel.busy = true;
        let alive = |server: &Server| {
            server.pid.load(Ordering::Acquire) != 0
                && server.generation.load(Ordering::Acquire) == generation
        };
        // Wakes the server: a new channel is found by its latch, a message by the queue's.
        // Safety: procno names the running server's PGPROC.
        unsafe { pg_sys::SetLatch(&raw mut (*shmem::proc_of(procno)).procLatch) };
        loop {
            // Safety: the channel's queues are attached; the bytes live until the send is done
            // (a WOULD_BLOCK send is resumed with the same data).
            let r = unsafe {
                pg_sys::shm_mq_send(channel.send, bytes.len(), bytes.as_ptr().cast(), true, true)
            };
            match r {
                pg_sys::shm_mq_result::SHM_MQ_SUCCESS => break,
                pg_sys::shm_mq_result::SHM_MQ_DETACHED => gone(index),
                _ => {
                    if !alive(server) {
                        gone(index)
                    }
                    wait(100);
                }
            }
        }
        let reply = loop {
            let mut n = 0usize;
            let mut data = std::ptr::null_mut();
            // Safety: as above; the data stays valid until the next receive on this queue.
            let r = unsafe { pg_sys::shm_mq_receive(channel.receive, &mut n, &mut data, true) };
            match r {
                pg_sys::shm_mq_result::SHM_MQ_SUCCESS => {
                    // Safety: shm_mq returned n bytes at data.
                    let b = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), n) };
                    break Reply::from_bytes(b).unwrap_or_else(|e| {
                        error(
                            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                            format!("malformed reply from the model server: {}", e.0),
                        )
                    });
                }
                pg_sys::shm_mq_result::SHM_MQ_DETACHED => gone(index),
                _ => {
                    if !alive(server) {
                        gone(index)
                    }
                    wait(100);
                }
            }
        };
        channel.busy = false;
        reply
    })
}

pub fn key(row: &ModelRow) -> ModelKey {
    ModelKey {
        // Safety: a plain read of this backend's database.
        database: unsafe { pg_sys::MyDatabaseId }.to_u32(),
        id: row.id,
        encoder_version: row.encoder_version.clone(),
        generator_version: row.generator_version.clone(),
    }
}

/// Sends a request for the model `row` to the server and returns its reply; the server's ERROR
/// is raised here with its SQLSTATE. A server that does not hold the model gets its weights
/// first, read as the in-backend mode reads them (as the extension's owner).
pub fn call(row: &ModelRow, request: Request) -> Reply {
    for _ in 0..3 {
        match round_trip(&request) {
            Reply::NeedModel => {
                let weights =
                    crate::security::as_owner(|| crate::model::registry::model_bytes(row.id));
                let load = Request::Load {
                    key: key(row),
                    name: row.name.clone(),
                    version: row.version,
                    weights,
                };
                match round_trip(&load) {
                    Reply::Loaded => {}
                    reply => return raise(reply),
                }
            }
            reply => return raise(reply),
        }
    }
    // Evicted again before it was used, three times: a server holding too few models for the
    // models in use at once.
    error(
        PgSqlErrorCode::ERRCODE_INSUFFICIENT_RESOURCES,
        format!(
            "the model server could not keep model {} ({}) loaded",
            row.id, row.name
        ),
    )
}

fn raise(reply: Reply) -> Reply {
    match reply {
        Reply::Error { sqlstate, message } => error(PgSqlErrorCode::from(sqlstate), message),
        reply => reply,
    }
}
