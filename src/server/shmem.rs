//! The model servers' shared state, in the main shared memory segment (so it exists only when the
//! library is preloaded): one entry per server, which the server fills and the status views read,
//! and one slot per backend, where a backend publishes the handle of its channel.
//!
//! Everything here is atomics or a seqlock: backends never block on a server to read its state.

use pgrx::pg_sys;
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU32, AtomicU64, Ordering, fence};

/// Servers a setting may ask for.
pub const MAX_SERVERS: usize = 8;
/// Models one server reports (it holds at most `synthsearch.server_models`, at most this many).
pub const MAX_MODELS: usize = 8;
const NAME_BYTES: usize = 64;
const DEVICE_BYTES: usize = 16;

/// A model a server holds, as the status view shows it.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct ModelInfo {
    pub database: u32,
    pub version: i32,
    pub id: i64,
    pub bytes: u64,
    pub requests: u64,
    pub loaded_at: i64,
    pub last_used: i64,
    name: [u8; NAME_BYTES],
}

impl ModelInfo {
    pub fn new(database: u32, id: i64, name: &str, version: i32, bytes: u64, now: i64) -> Self {
        let mut n = [0u8; NAME_BYTES];
        // Cut on a character boundary so the name reads back as UTF-8.
        let mut end = name.len().min(NAME_BYTES);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        n[..end].copy_from_slice(&name.as_bytes()[..end]);
        ModelInfo {
            database,
            version,
            id,
            bytes,
            requests: 0,
            loaded_at: now,
            last_used: now,
            name: n,
        }
    }

    pub fn name(&self) -> String {
        let end = self.name.iter().position(|&b| b == 0).unwrap_or(NAME_BYTES);
        String::from_utf8_lossy(&self.name[..end]).into_owned()
    }
}

/// What a server writes now and then and readers copy whole.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct Info {
    device: [u8; DEVICE_BYTES],
    pub threads: i32,
    pub models: u32,
    pub model: [ModelInfo; MAX_MODELS],
}

impl Info {
    pub fn set_device(&mut self, device: &str) {
        self.device = [0; DEVICE_BYTES];
        let n = device.len().min(DEVICE_BYTES);
        self.device[..n].copy_from_slice(&device.as_bytes()[..n]);
    }
    pub fn device(&self) -> String {
        let end = self
            .device
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(DEVICE_BYTES);
        String::from_utf8_lossy(&self.device[..end]).into_owned()
    }
}

#[repr(C)]
pub struct Server {
    /// The server's pid; 0 while none runs.
    pub pid: AtomicI32,
    /// Index of its PGPROC in ProcGlobal->allProcs (the queues' sender and receiver).
    pub procno: AtomicI32,
    /// Bumped at every start: a channel made for an earlier server is dropped.
    pub generation: AtomicU32,
    pub started: AtomicI64,
    pub requests: AtomicU64,
    pub batches: AtomicU64,
    /// Requests answered by the networks (a mean batch size is batched / batches).
    pub batched: AtomicU64,
    pub errors: AtomicU64,
    pub loads: AtomicU64,
    /// Requests waiting for the next batch at the last look.
    pub queue: AtomicU32,
    pub clients: AtomicU32,
    pub rss: AtomicU64,
    info_seq: AtomicU32,
    info: UnsafeCell<Info>,
}

/// A backend's channel to its server: the handle of the DSM segment holding its two queues.
#[repr(C)]
pub struct Slot {
    pub handle: AtomicU32,
    pub server: AtomicU32,
    pub generation: AtomicU32,
}

#[repr(C)]
struct Header {
    slots: u32,
    servers: [Server; MAX_SERVERS],
}

static mut SHARED: *mut Header = std::ptr::null_mut();
static mut PREV_REQUEST: pg_sys::shmem_request_hook_type = None;
static mut PREV_STARTUP: pg_sys::shmem_startup_hook_type = None;

fn size(slots: usize) -> usize {
    std::mem::size_of::<Header>() + slots * std::mem::size_of::<Slot>()
}

fn slot_count() -> usize {
    // Safety: set by the postmaster before shared memory is sized; read-only after.
    unsafe { pg_sys::MaxBackends as usize }
}

/// Asks for the shared memory. Call from _PG_init while preloading only.
pub fn init() {
    // Safety: _PG_init runs in the postmaster, single-threaded, before shared memory exists.
    unsafe {
        PREV_REQUEST = pg_sys::shmem_request_hook;
        pg_sys::shmem_request_hook = Some(request);
        PREV_STARTUP = pg_sys::shmem_startup_hook;
        pg_sys::shmem_startup_hook = Some(startup);
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn request() {
    // Safety: the hook chain as PostgreSQL documents it; MaxBackends is final here.
    unsafe {
        if let Some(prev) = PREV_REQUEST {
            prev();
        }
        pg_sys::RequestAddinShmemSpace(size(slot_count()));
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn startup() {
    // Safety: called by the postmaster (again after a crash restart, with a fresh segment) under
    // AddinShmemInitLock, as every extension's shared structure is made.
    unsafe {
        if let Some(prev) = PREV_STARTUP {
            prev();
        }
        let lock = &raw mut (*pg_sys::MainLWLockArray.add(21)).lock;
        pg_sys::LWLockAcquire(lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
        let mut found = false;
        let slots = slot_count();
        let p = pg_sys::ShmemInitStruct(
            c"synthsearch model servers".as_ptr(),
            size(slots),
            &mut found,
        ) as *mut Header;
        if !found {
            std::ptr::write_bytes(p.cast::<u8>(), 0, size(slots));
            (*p).slots = slots as u32;
        }
        pg_sys::LWLockRelease(lock);
        SHARED = p;
    }
}

/// The shared state, or None when the library was not preloaded.
fn header() -> Option<&'static Header> {
    // Safety: set once per shared memory segment by the postmaster and inherited by every child;
    // the segment lives as long as the processes that see it.
    unsafe { SHARED.as_ref() }
}

pub fn available() -> bool {
    header().is_some()
}

pub fn server(i: usize) -> Option<&'static Server> {
    header().and_then(|h| h.servers.get(i))
}

/// This backend's slot: the index of its PGPROC, which only it uses while it lives.
pub fn my_slot() -> Option<&'static Slot> {
    let h = header()?;
    let n = my_procno()?;
    if n >= h.slots as usize {
        return None;
    }
    // Safety: the slots follow the header, `h.slots` of them, in the same allocation.
    Some(unsafe { &*slots_ptr(h).add(n) })
}

pub fn slots() -> &'static [Slot] {
    match header() {
        // Safety: as in my_slot.
        Some(h) => unsafe { std::slice::from_raw_parts(slots_ptr(h), h.slots as usize) },
        None => &[],
    }
}

fn slots_ptr(h: &Header) -> *const Slot {
    // Safety: the size was asked for as size(slots): the header, then the slots.
    unsafe {
        (h as *const Header)
            .cast::<u8>()
            .add(std::mem::size_of::<Header>())
            .cast::<Slot>()
    }
}

/// The index of this process's PGPROC.
pub fn my_procno() -> Option<usize> {
    // Safety: MyProc and ProcGlobal are set for every process attached to shared memory; MyProc
    // points into ProcGlobal->allProcs.
    unsafe {
        if pg_sys::MyProc.is_null() || pg_sys::ProcGlobal.is_null() {
            return None;
        }
        let n = pg_sys::MyProc.offset_from((*pg_sys::ProcGlobal).allProcs);
        usize::try_from(n).ok()
    }
}

/// The PGPROC of a server.
pub fn proc_of(procno: i32) -> *mut pg_sys::PGPROC {
    // Safety: procno was read from a server entry that the server wrote from its own MyProc.
    unsafe { (*pg_sys::ProcGlobal).allProcs.add(procno as usize) }
}

impl Server {
    /// Copies the server's info (a seqlock read: retried while the server writes).
    pub fn info(&self) -> Info {
        loop {
            let before = self.info_seq.load(Ordering::Acquire);
            if before % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            // Safety: a torn copy is possible and is detected by the sequence check below.
            let copy = unsafe { std::ptr::read_volatile(self.info.get()) };
            fence(Ordering::Acquire);
            if self.info_seq.load(Ordering::Relaxed) == before {
                return copy;
            }
        }
    }

    /// Replaces the info. Only the server that owns the entry calls this.
    pub fn set_info(&self, info: &Info) {
        self.info_seq.fetch_add(1, Ordering::AcqRel);
        fence(Ordering::Release);
        // Safety: one writer (the owning server); readers detect the write by the sequence.
        unsafe { std::ptr::write_volatile(self.info.get(), *info) };
        self.info_seq.fetch_add(1, Ordering::Release);
    }

    /// Resets the counters for a new server process.
    pub fn reset(&self) {
        for c in [
            &self.requests,
            &self.batches,
            &self.batched,
            &self.errors,
            &self.loads,
            &self.rss,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        self.queue.store(0, Ordering::Relaxed);
        self.clients.store(0, Ordering::Relaxed);
        // Safety: a zeroed Info is a valid Info (no models, no device).
        self.set_info(&unsafe { std::mem::zeroed() });
    }
}

// Safety: the fields are atomics or behind the seqlock; the memory is shared between processes.
unsafe impl Sync for Server {}
