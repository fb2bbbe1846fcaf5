//! The backend's side: a channel to the model server (a DSM segment with two `shm_mq`s, made on
//! first use and kept for the session), "send the request, wait for the reply", and the one
//! exchange a backend adds: the weights of a model the server does not hold yet.
//!
//! Waiting is a latch loop that checks for interrupts (a cancel or statement_timeout ends it at
//! once) and that the server still runs (its exit ends it with an ERROR, never a hang). A request
//! cut short by an ERROR closes the channel as the ERROR unwinds, which tells the server to stop
//! working on it; the next request makes a new one.
//!
//! The server's ERROR is raised here whole (SQLSTATE, message, detail, hint) with a context line
//! naming the server, as PostgreSQL's parallel workers' errors are rethrown by their leader.

use super::message::{self, ModelKey, PIECE_BYTES, Reply, Request};
use super::shmem::{self, Server};
use super::{MAX_MODEL_BYTES, MAX_REQUEST_BYTES};
use crate::fmgr::{error, error_with};
use crate::model::registry::ModelRow;
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use std::cell::RefCell;
use std::sync::atomic::{AtomicI32, Ordering};

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
    /// Detaches the queues (which tells the server, and frees their handles and buffers) and
    /// the segment. Not a Drop: at process exit PostgreSQL has detached every segment before
    /// thread-locals die.
    fn close(self) {
        if let Some(slot) = shmem::my_slot() {
            slot.handle.store(0, Ordering::Release);
        }
        // Safety: the segment was made by this backend and is still mapped (pinned); the queues'
        // handles were attached in open(), in TopMemoryContext, and are detached once, here.
        unsafe {
            pg_sys::shm_mq_detach(self.send);
            pg_sys::shm_mq_detach(self.receive);
            pg_sys::dsm_detach(self.segment);
        }
    }
}

/// The channel while a request is in flight. Dropped while still busy (an ERROR, a cancel or a
/// statement_timeout unwinding through the wait, or a server that refused the request), it
/// closes the channel at once: the server sees it gone and drops what is left of the request,
/// instead of working on until this backend's next request.
struct InFlight<'a>(&'a mut Option<Channel>);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.0.as_ref().is_some_and(|c| c.busy)
            && let Some(channel) = self.0.take()
        {
            channel.close();
        }
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

/// Sends one message on the channel's request queue, waiting while the queue is full. None
/// when the server detached.
fn send(channel: &Channel, bytes: &[u8], alive: impl Fn() -> bool, index: usize) -> Option<()> {
    loop {
        // Safety: the channel's queues are attached; the bytes live until the send is done
        // (a WOULD_BLOCK send is resumed with the same data).
        let r = unsafe {
            pg_sys::shm_mq_send(channel.send, bytes.len(), bytes.as_ptr().cast(), true, true)
        };
        match r {
            pg_sys::shm_mq_result::SHM_MQ_SUCCESS => return Some(()),
            pg_sys::shm_mq_result::SHM_MQ_DETACHED => return None,
            _ => {
                if !alive() {
                    gone(index)
                }
                wait(100);
            }
        }
    }
}

/// Receives the reply; None while there is none yet and `nowait`.
fn receive(channel: &Channel, nowait: bool, index: usize) -> Option<Reply> {
    let mut n = 0usize;
    let mut data = std::ptr::null_mut();
    // Safety: as in send; the data stays valid until the next receive on this queue.
    let r = unsafe { pg_sys::shm_mq_receive(channel.receive, &mut n, &mut data, nowait) };
    match r {
        pg_sys::shm_mq_result::SHM_MQ_SUCCESS => {
            // Safety: shm_mq returned n bytes at data.
            let b = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), n) };
            Some(Reply::from_bytes(b).unwrap_or_else(|e| {
                error(
                    PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                    format!("malformed reply from the model server: {}", e.0),
                )
            }))
        }
        pg_sys::shm_mq_result::SHM_MQ_DETACHED => gone(index),
        _ => None,
    }
}

/// One round trip: sends the request (its header, then its pieces), waits for the reply.
/// Returns the reply and the server's index.
fn round_trip(bytes: &[u8]) -> (Reply, usize) {
    let (index, server, generation, procno) = running_server();
    let reply = CHANNEL.with_borrow_mut(|slot| {
        if slot
            .as_ref()
            .is_some_and(|c| c.busy || c.server != index || c.generation != generation)
            && let Some(old) = slot.take()
        {
            old.close();
        }
        slot.get_or_insert_with(|| open(index, generation, procno))
            .busy = true;
        let flight = InFlight(slot);
        let channel = flight.0.as_ref().expect("an open channel");
        let alive = || {
            server.pid.load(Ordering::Acquire) != 0
                && server.generation.load(Ordering::Acquire) == generation
        };
        // Wakes the server: a new channel is found by its latch, a message by the queue's.
        // Safety: procno names the running server's PGPROC.
        unsafe { pg_sys::SetLatch(&raw mut (*shmem::proc_of(procno)).procLatch) };
        let header = message::header(bytes);
        for piece in std::iter::once(&header[..]).chain(bytes.chunks(PIECE_BYTES)) {
            if send(channel, piece, alive, index).is_none() {
                // The server refused the request from its header and said why before it
                // detached; without a reply it exited. The channel closes as `flight` drops.
                return receive(channel, true, index).unwrap_or_else(|| gone(index));
            }
        }
        let reply = loop {
            if let Some(reply) = receive(channel, true, index) {
                break reply;
            }
            if !alive() {
                gone(index)
            }
            wait(100);
        };
        if let Some(c) = flight.0.as_mut() {
            c.busy = false;
        }
        reply
    });
    (reply, index)
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
/// is raised here as the server made it. A server that does not hold the model gets its weights
/// (read as the in-backend mode reads them, as the extension's owner) with the request, and
/// answers it right after loading: however many models other connections use, a request takes
/// at most two round trips. A `synth_encode_batch` longer than a request may be goes in parts.
pub fn call(row: &ModelRow, request: Request) -> Reply {
    match request {
        Request::EncodeBatch { key, images }
            if message::encode_batch_len(&key, &images) > MAX_REQUEST_BYTES =>
        {
            encode_in_parts(row, key, images)
        }
        request => call_one(row, request, 0),
    }
}

/// A `synth_encode_batch` in consecutive parts of at most MAX_REQUEST_BYTES each.
fn encode_in_parts(row: &ModelRow, key: ModelKey, images: Vec<Vec<u8>>) -> Reply {
    let empty = message::encode_batch_len(&key, &[]);
    let mut out = Vec::with_capacity(images.len());
    let mut images = images.into_iter().peekable();
    while images.peek().is_some() {
        let (mut part, mut bytes) = (Vec::new(), empty);
        // At least one image a part: one longer than the limit alone is refused in call_one.
        while let Some(next) = images.peek() {
            if !part.is_empty() && bytes + 4 + next.len() > MAX_REQUEST_BYTES {
                break;
            }
            bytes += 4 + next.len();
            part.extend(images.next());
        }
        let (first, n) = (out.len(), part.len());
        let request = Request::EncodeBatch {
            key: key.clone(),
            images: part,
        };
        match call_one(row, request, first) {
            Reply::Embeddings(all) if all.len() == n => out.extend(all),
            other => return other,
        }
    }
    Reply::Embeddings(out)
}

/// One request, and the model's weights with it if the server asks for them. `first`: the
/// position in the whole call of an `EncodeBatch` part's first image.
fn call_one(row: &ModelRow, request: Request, first: usize) -> Reply {
    let bytes = request.to_bytes();
    if bytes.len() > MAX_REQUEST_BYTES {
        too_large(
            format!(
                "a request of {} bytes is more than the model server's limit of {MAX_REQUEST_BYTES} bytes",
                bytes.len()
            ),
            format!(
                "An image is at most {} bytes.",
                synthsearch_data::image_io::DEFAULT_MAX_BYTES
            ),
        );
    }
    let (reply, index) = round_trip(&bytes);
    drop(bytes);
    let (reply, index) = match reply {
        Reply::NeedModel => {
            let weights = crate::security::as_owner(|| crate::model::registry::model_bytes(row.id));
            if weights.len() > MAX_MODEL_BYTES {
                too_large(
                    format!(
                        "model {} ({} version {}) is {} bytes, more than the model server's limit of {MAX_MODEL_BYTES} bytes",
                        row.id,
                        row.name,
                        row.version,
                        weights.len()
                    ),
                    "synthsearch.mode = backend runs it in the connection instead.".into(),
                );
            }
            let load = Request::Load {
                key: key(row),
                name: row.name.clone(),
                version: row.version,
                weights,
                request: Box::new(request),
            };
            let bytes = load.to_bytes();
            if bytes.len() > Request::limit(bytes[0]) {
                too_large(
                    format!(
                        "model {} ({}) and a request are {} bytes, more than the model server takes",
                        row.id,
                        row.name,
                        bytes.len()
                    ),
                    "synthsearch.mode = backend runs it in the connection instead.".into(),
                );
            }
            round_trip(&bytes)
        }
        reply => (reply, index),
    };
    match reply {
        // The load came with the request, so the server cannot ask again.
        Reply::NeedModel => error(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            format!(
                "the model server asked again for model {} ({})",
                row.id, row.name
            ),
        ),
        Reply::Error {
            sqlstate,
            message,
            detail,
            hint,
            image,
        } => {
            let message = if image > 0 {
                format!("image {}: {message}", first + image as usize)
            } else {
                message
            };
            raise(index, sqlstate, message, detail, hint)
        }
        reply => reply,
    }
}

/// 54000, before anything is sent.
fn too_large(message: String, hint: String) -> ! {
    error_with(
        PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
        message,
        None,
        Some(hint),
    )
}

/// Which server the ERROR being raised came from; -1: none (the context callback adds nothing).
static SERVED_BY: AtomicI32 = AtomicI32::new(-1);
/// On error_context_stack while a server's ERROR is raised. Static: pgrx reports the ERROR once
/// it has unwound to the function's guard, after this frame is gone.
static mut SERVED_BY_CONTEXT: pg_sys::ErrorContextCallback = pg_sys::ErrorContextCallback {
    previous: std::ptr::null_mut(),
    callback: Some(served_by),
    arg: std::ptr::null_mut(),
};

unsafe extern "C-unwind" {
    // Variadic; pgrx's bindings leave it out (its own ereport declares it the same way).
    fn errcontext_msg(fmt: *const std::ffi::c_char, ...) -> std::ffi::c_int;
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn served_by(_arg: *mut std::ffi::c_void) {
    let server = SERVED_BY.swap(-1, Ordering::Relaxed);
    if server >= 0 {
        // Safety: called by errfinish while it collects the ERROR's context lines.
        unsafe {
            errcontext_msg(
                c"while served by synthsearch model server %d".as_ptr(),
                server as std::ffi::c_int,
            )
        };
    }
}

/// Raises the server's ERROR in this backend: its SQLSTATE, message, detail and hint, and a
/// context line naming the server.
fn raise(
    server: usize,
    sqlstate: i32,
    message: String,
    detail: Option<String>,
    hint: Option<String>,
) -> ! {
    SERVED_BY.store(server as i32, Ordering::Relaxed);
    // Safety: the callback is static, so it outlives the unwinding to the function's guard,
    // where pgrx calls errfinish. Its `previous` is the stack as it is now: the frames that
    // pushed those entries are callers of this one and outlive the report. A PG_CATCH, and
    // error recovery, reset the stack to what it was before, taking this entry off; it is pushed
    // only when not on the stack already (a Rust catch of an earlier ERROR could leave it there).
    unsafe {
        let context = &raw mut SERVED_BY_CONTEXT;
        let mut on = pg_sys::error_context_stack;
        while !on.is_null() && on != context {
            on = (*on).previous;
        }
        if on.is_null() {
            (*context).previous = pg_sys::error_context_stack;
            pg_sys::error_context_stack = context;
        }
    }
    error_with(PgSqlErrorCode::from(sqlstate), message, detail, hint)
}
