//! The model server: a background worker started with the postmaster (and restarted a second after
//! it exits) that holds the models on its device and answers every backend's requests.
//!
//! Its loop: take the channels backends have published, read one request from each (never
//! blocking on a backend), wait up to `synthsearch.server_batch_wait` for more while fewer than
//! `synthsearch.server_max_batch` have come, then answer them with one forward pass per model and
//! kind, and write the replies (a reply a slow backend cannot take yet waits in the server). A
//! `synth_encode_batch` is served `server_max_batch` images a turn, other requests between its
//! pieces, and stops when its backend leaves (a cancel closes the channel).
//! It connects to no database: a backend that finds its model missing sends the weights, so the
//! server never blocks DROP DATABASE and one process serves the whole cluster.

use super::message::{Incoming, ModelKey, Ref, Refused, Reply, Request};
use super::shmem::{self, Info, MAX_MODELS, ModelInfo, Server};
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use synthsearch_data::image_io::{self, DecodeLimits};
use synthsearch_model::{Model, ModelError, Reference, WalkEnd};

pub fn register(servers: i32) {
    for i in 0..servers {
        BackgroundWorkerBuilder::new(&format!("synthsearch model server {i}"))
            .set_type("synthsearch model server")
            .set_library("synthsearch")
            .set_function("synth_model_server_main")
            .set_argument(Some(pg_sys::Datum::from(i)))
            .enable_shmem_access(None)
            // Restarted after it exits or crashes; serves a standby too.
            .set_start_time(pgrx::bgworkers::BgWorkerStartTime::ConsistentState)
            .set_restart_time(Some(Duration::from_secs(1)))
            .load();
    }
}

/// A backend's channel, as the server holds it.
struct Client {
    handle: u32,
    segment: *mut pg_sys::dsm_segment,
    requests: *mut pg_sys::shm_mq_handle,
    replies: *mut pg_sys::shm_mq_handle,
    /// A request whose pieces are still coming.
    incoming: Option<Incoming>,
    /// A reply the backend's queue could not take whole yet.
    pending: Option<Vec<u8>>,
    /// An `EncodeBatch` served a piece at a time; dropped with the client when its backend goes.
    job: Option<Job>,
}

impl Drop for Client {
    fn drop(&mut self) {
        // Safety: attached by this process in accept(). shm_mq_detach tells the backend and
        // frees each handle and its buffer (in TopMemoryContext, otherwise kept for the
        // server's life); then the segment is unmapped.
        unsafe {
            pg_sys::shm_mq_detach(self.requests);
            pg_sys::shm_mq_detach(self.replies);
            pg_sys::dsm_detach(self.segment);
        }
    }
}

/// What reading a client's request queue gave.
enum Received {
    Nothing,
    Request(Request),
    /// The backend detached.
    Gone,
    /// A request longer than its limit, refused from its header: this reply, then the client
    /// is dropped (the rest of the request is never read).
    Refused(Reply),
    Malformed(&'static str),
}

/// Pieces read from one client in one look, so a long upload (a model's weights) does not hold
/// up the loop: 1 MiB.
const PIECES_PER_LOOK: usize = 16;

impl Client {
    /// Reads the pieces that have come, until a request is whole or the queue is empty.
    fn receive(&mut self) -> Received {
        for _ in 0..PIECES_PER_LOOK {
            let mut n = 0usize;
            let mut data = std::ptr::null_mut();
            // Safety: the queue is attached; the data is copied before the next receive.
            let r = unsafe { pg_sys::shm_mq_receive(self.requests, &mut n, &mut data, true) };
            match r {
                pg_sys::shm_mq_result::SHM_MQ_SUCCESS => {}
                pg_sys::shm_mq_result::SHM_MQ_DETACHED => return Received::Gone,
                _ => return Received::Nothing,
            }
            // Safety: shm_mq returned n bytes at data (a piece: at most PIECE_BYTES).
            let piece = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), n) };
            match &mut self.incoming {
                None => match Incoming::start(piece) {
                    Ok(incoming) => self.incoming = Some(incoming),
                    Err(Refused::TooLarge { len, max }) => {
                        return Received::Refused(error_with(
                            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
                            format!(
                                "a request of {len} bytes is more than the model server's limit of {max} bytes"
                            ),
                            None,
                            None,
                        ));
                    }
                    Err(Refused::NoMemory { len }) => {
                        return Received::Refused(error_with(
                            PgSqlErrorCode::ERRCODE_OUT_OF_MEMORY,
                            format!("the model server cannot allocate a request of {len} bytes now"),
                            None,
                            Some("Retry; fewer models loading at once (synthsearch.server_models) leave it more memory.".into()),
                        ));
                    }
                    Err(Refused::Malformed(e)) => return Received::Malformed(e.0),
                },
                Some(incoming) => match incoming.add(piece) {
                    Ok(false) => {}
                    Ok(true) => {
                        let whole = self.incoming.take().expect("a request in pieces");
                        return match whole.finish() {
                            Ok(request) => Received::Request(request),
                            Err(e) => Received::Malformed(e.0),
                        };
                    }
                    Err(e) => return Received::Malformed(e.0),
                },
            }
        }
        Received::Nothing
    }
}

/// An `EncodeBatch` in progress: one piece of `server_max_batch` images per turn, other
/// clients' requests served between pieces.
struct Job {
    /// Held here, so evicting the model from the server's list cannot change or end the job.
    model: Rc<Model>,
    images: Vec<Vec<u8>>,
    done: usize,
    out: Vec<Vec<f32>>,
}

/// A batch's requests for one model, with the model they asked for.
type Group = (ModelKey, Rc<Model>, Vec<(usize, Request)>);

struct Held {
    key: ModelKey,
    model: Rc<Model>,
    info: ModelInfo,
}

struct State {
    index: usize,
    entry: &'static Server,
    generation: u32,
    device: tch::Device,
    clients: HashMap<usize, Client>,
    models: Vec<Held>,
    /// The client whose job had the last turn.
    last_turn: usize,
}

fn now() -> i64 {
    // Safety: reads the clock.
    unsafe { pg_sys::GetCurrentTimestamp() }
}

fn device() -> tch::Device {
    use crate::gucs::{DEVICE, Device};
    match DEVICE.get() {
        Device::Cpu => tch::Device::Cpu,
        Device::Auto => tch::Device::cuda_if_available(),
        Device::Cuda => {
            if tch::Cuda::is_available() {
                tch::Device::Cuda(0)
            } else {
                pgrx::warning!(
                    "synthsearch model server: synthsearch.device is cuda but no CUDA device is visible; using the CPU"
                );
                tch::Device::Cpu
            }
        }
    }
}

fn apply_threads() -> i32 {
    let want = super::SERVER_THREADS.get();
    if want > 0 && tch::get_num_threads() != want {
        tch::set_num_threads(want);
    }
    tch::get_num_threads()
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn on_exit(_code: i32, arg: pg_sys::Datum) {
    if let Some(s) = shmem::server(arg.value()) {
        s.pid.store(0, Ordering::Release);
    }
}

#[pgrx::pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn synth_model_server_main(arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    // Before libtorch starts a thread: signals reach this thread alone, where it waits and looks
    // at its flags (pgrx's handlers abort the process on any other thread).
    crate::signals::hold();
    let index = arg.value();
    let Some(entry) = shmem::server(index) else {
        return;
    };
    let Some(procno) = shmem::my_procno() else {
        return;
    };
    entry.reset();
    let generation = entry
        .generation
        .fetch_add(1, Ordering::AcqRel)
        .wrapping_add(1);
    entry.procno.store(procno as i32, Ordering::Release);
    entry.started.store(now(), Ordering::Release);
    // Safety: registers a callback with this process's exit; it clears the pid so backends see
    // the server gone at once.
    unsafe { pg_sys::before_shmem_exit(Some(on_exit), pg_sys::Datum::from(index)) };
    let mut state = State {
        index,
        entry,
        generation,
        device: device(),
        clients: HashMap::new(),
        models: Vec::new(),
        last_turn: 0,
    };
    state.publish(apply_threads());
    // Safety: a plain read of this process's pid.
    entry
        .pid
        .store(unsafe { pg_sys::MyProcPid }, Ordering::Release);
    pgrx::log!(
        "synthsearch model server {index} ready on {}",
        device_name(state.device)
    );
    state.run();
}

fn device_name(d: tch::Device) -> String {
    match d {
        tch::Device::Cuda(i) => format!("cuda:{i}"),
        _ => "cpu".into(),
    }
}

fn wait(timeout: Duration) {
    // Safety: this process's latch; WL_EXIT_ON_PM_DEATH ends it if the postmaster is gone.
    crate::signals::open(|| unsafe {
        pg_sys::WaitLatch(
            pg_sys::MyLatch,
            (pg_sys::WL_LATCH_SET | pg_sys::WL_TIMEOUT | pg_sys::WL_EXIT_ON_PM_DEATH) as i32,
            timeout.as_millis().max(1) as std::ffi::c_long,
            pg_sys::PG_WAIT_EXTENSION,
        );
        pg_sys::ResetLatch(pg_sys::MyLatch);
    });
}

/// Resident memory of this process (/proc/self/statm; smaps_rollup would walk every mapping of
/// libtorch, milliseconds the requests would wait).
fn resident_bytes() -> u64 {
    // Safety: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(0) as u64;
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * page)
        .unwrap_or(0)
}

impl State {
    fn run(&mut self) {
        let mut last_rss = Instant::now() - Duration::from_secs(10);
        loop {
            // Signals that came during the last batch run their handlers here (a busy server
            // may not wait on its latch between batches).
            crate::signals::open(|| ());
            if BackgroundWorker::sigterm_received() {
                // Exit 1: the postmaster starts the server again unless it is shutting down.
                // Safety: ends the process through PostgreSQL's exit path.
                unsafe { pg_sys::proc_exit(1) };
            }
            if BackgroundWorker::sighup_received() {
                // Safety: re-reads postgresql.conf, as every process does on SIGHUP.
                unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
                let threads = apply_threads();
                self.publish(threads);
            }
            if last_rss.elapsed() > Duration::from_secs(1) {
                self.entry.rss.store(resident_bytes(), Ordering::Relaxed);
                last_rss = Instant::now();
            }
            self.flush();
            self.accept();
            let mut batch = self.collect();
            let jobs = self.clients.values().any(|c| c.job.is_some());
            if batch.is_empty() && !jobs {
                wait(Duration::from_secs(1));
                continue;
            }
            if !batch.is_empty() {
                // Gather: a short wait lets the requests of other connections join this batch.
                let window = Duration::from_micros(super::BATCH_WAIT_US.get() as u64);
                let max = super::MAX_BATCH.get() as usize;
                let deadline = Instant::now() + window;
                // Only while some connection that may send has not sent a request yet: waiting
                // when every one is in the batch (or waits for a reply or a job) would only add
                // latency. Short sleeps, not the latch: its timeout counts whole milliseconds.
                while batch.len() < max && batch.len() < self.may_send() {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    std::thread::sleep(left.min(Duration::from_micros(50)));
                    self.accept();
                    batch.extend(self.collect());
                }
                self.entry
                    .queue
                    .store(batch.len() as u32, Ordering::Relaxed);
                let replies = self.serve(batch);
                self.entry.queue.store(0, Ordering::Relaxed);
                for (client, reply) in replies {
                    self.reply(client, reply);
                }
            }
            // One piece of one long request per turn: requests that arrive meanwhile wait for
            // at most that piece, not the whole of it.
            self.step_job();
            self.trim();
            self.publish(tch::get_num_threads());
        }
    }

    /// Clients that may send a request now: neither a reply nor a job of theirs is under way.
    fn may_send(&self) -> usize {
        self.clients
            .values()
            .filter(|c| c.pending.is_none() && c.job.is_none())
            .count()
    }

    /// Attaches the channels backends have published for this server since the last look, and
    /// drops those they replaced or closed (a cancelled request's channel: its job ends here).
    fn accept(&mut self) {
        for (i, slot) in shmem::slots().iter().enumerate() {
            let handle = slot.handle.load(Ordering::Acquire);
            let mine = handle != 0
                && slot.server.load(Ordering::Relaxed) as usize == self.index
                && slot.generation.load(Ordering::Relaxed) == self.generation;
            match self.clients.get(&i) {
                Some(c) if mine && c.handle == handle => continue,
                Some(_) => {
                    self.clients.remove(&i);
                }
                None => {}
            }
            if !mine {
                continue;
            }
            // Safety: attaches a segment a backend made for this server; NULL when the backend
            // has already gone and the segment with it. The mapping and the queues' handles
            // (in TopMemoryContext) live until Client::drop detaches them.
            unsafe {
                let old = pg_sys::MemoryContextSwitchTo(pg_sys::TopMemoryContext);
                let segment = pg_sys::dsm_attach(handle);
                if segment.is_null() {
                    pg_sys::MemoryContextSwitchTo(old);
                    continue;
                }
                pg_sys::dsm_pin_mapping(segment);
                let base = pg_sys::dsm_segment_address(segment).cast::<u8>();
                let requests = pg_sys::shm_mq_attach(base.cast(), segment, std::ptr::null_mut());
                let replies = pg_sys::shm_mq_attach(
                    base.add(super::client::QUEUE_BYTES).cast(),
                    segment,
                    std::ptr::null_mut(),
                );
                pg_sys::MemoryContextSwitchTo(old);
                self.clients.insert(
                    i,
                    Client {
                        handle,
                        segment,
                        requests,
                        replies,
                        incoming: None,
                        pending: None,
                        job: None,
                    },
                );
            }
        }
        self.entry
            .clients
            .store(self.clients.len() as u32, Ordering::Relaxed);
    }

    /// One whole request from each client that has one; clients whose backend left (a cancel
    /// mid-job included) or that broke the protocol are dropped.
    fn collect(&mut self) -> Vec<(usize, Request)> {
        let mut out = Vec::new();
        let mut gone = Vec::new();
        for (&i, c) in &mut self.clients {
            if c.pending.is_some() {
                continue;
            }
            match c.receive() {
                Received::Nothing => {}
                // A backend sends again only after its reply: a request during a job is not ours.
                Received::Request(_) if c.job.is_some() => {
                    pgrx::warning!("synthsearch model server: a request during a job");
                    gone.push(i);
                }
                Received::Request(request) => out.push((i, request)),
                Received::Gone => gone.push(i),
                Received::Refused(reply) => {
                    self.entry.errors.fetch_add(1, Ordering::Relaxed);
                    let bytes = reply.to_bytes();
                    // Safety: the queue is attached; the backend waits for this reply (and reads
                    // it after the server detached), so one try without waiting is enough.
                    unsafe {
                        pg_sys::shm_mq_send(
                            c.replies,
                            bytes.len(),
                            bytes.as_ptr().cast(),
                            true,
                            true,
                        )
                    };
                    gone.push(i);
                }
                Received::Malformed(e) => {
                    pgrx::warning!("synthsearch model server: malformed request: {e}");
                    gone.push(i);
                }
            }
        }
        for i in gone {
            self.clients.remove(&i);
        }
        out
    }

    fn reply(&mut self, client: usize, reply: Reply) {
        if matches!(reply, Reply::Error { .. }) {
            self.entry.errors.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(c) = self.clients.get_mut(&client) {
            c.pending = Some(reply.to_bytes());
        }
        self.flush_one(client);
    }

    /// Writes the replies that wait; a backend that left is dropped.
    fn flush(&mut self) {
        let waiting: Vec<usize> = self
            .clients
            .iter()
            .filter(|(_, c)| c.pending.is_some())
            .map(|(&i, _)| i)
            .collect();
        for i in waiting {
            self.flush_one(i);
        }
    }

    fn flush_one(&mut self, i: usize) {
        let Some(c) = self.clients.get_mut(&i) else {
            return;
        };
        let Some(bytes) = &c.pending else { return };
        // Safety: the queue is attached; a WOULD_BLOCK send is resumed with the same bytes.
        let r = unsafe {
            pg_sys::shm_mq_send(c.replies, bytes.len(), bytes.as_ptr().cast(), true, true)
        };
        match r {
            pg_sys::shm_mq_result::SHM_MQ_SUCCESS => c.pending = None,
            pg_sys::shm_mq_result::SHM_MQ_DETACHED => {
                self.clients.remove(&i);
            }
            _ => {}
        }
    }

    /// Writes what the status view shows.
    fn publish(&self, threads: i32) {
        // Safety: a zeroed Info is valid.
        let mut info: Info = unsafe { std::mem::zeroed() };
        info.set_device(&device_name(self.device));
        info.threads = threads;
        info.models = self.models.len().min(MAX_MODELS) as u32;
        for (slot, held) in info.model.iter_mut().zip(&self.models) {
            *slot = held.info;
        }
        self.entry.set_info(&info);
    }

    fn held(&self, key: &ModelKey) -> Option<usize> {
        self.models.iter().position(|h| &h.key == key)
    }

    /// Loads a model the server does not hold. Nothing is evicted here: a batch's models stay
    /// until it is answered, and [`State::trim`] makes room afterwards.
    fn load(
        &mut self,
        key: ModelKey,
        name: &str,
        version: i32,
        weights: &[u8],
    ) -> Result<(), Reply> {
        if self.held(&key).is_some() {
            return Ok(());
        }
        let device = self.device;
        // Weights from a registry row are checked by the checkpoint's own sums, but a panic in
        // libtorch while reading them must stay this request's error, as any other.
        let model = guard(|| {
            Model::from_bytes(weights, device).map_err(|e| {
                // As the in-backend mode says it (crate::model::cache).
                let what = format!("model {} ({name} version {version})", key.id);
                report(crate::errors::checkpoint(&e, &what, false))
            })
        })?;
        let info = ModelInfo::new(
            key.database,
            key.id,
            name,
            version,
            weights.len() as u64,
            now(),
        );
        self.models.push(Held {
            key,
            model: Rc::new(model),
            info,
        });
        self.entry.loads.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Evicts the least recently used models until at most `server_models` are held. A job
    /// keeps its model alive until it ends, whatever is evicted.
    fn trim(&mut self) {
        let keep = (super::SERVER_MODELS.get() as usize).clamp(1, MAX_MODELS);
        while self.models.len() > keep {
            let oldest = self
                .models
                .iter()
                .enumerate()
                .min_by_key(|(_, h)| h.info.last_used)
                .map(|(i, _)| i)
                .unwrap();
            self.models.remove(oldest);
        }
    }

    /// Answers a batch: loads first (each Load then serves the request it came with), then per
    /// model one pass for the encodes and one for the generations (in pieces of at most
    /// server_max_batch), walks one at a time; an `EncodeBatch` becomes its client's job.
    /// Requests are grouped by their key and hold their model, so whatever the batch loads,
    /// every request is answered by the model it asked for.
    fn serve(&mut self, batch: Vec<(usize, Request)>) -> Vec<(usize, Reply)> {
        self.entry
            .requests
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        let mut replies = Vec::with_capacity(batch.len());
        let mut work = Vec::with_capacity(batch.len());
        for (client, request) in batch {
            let Request::Load {
                key,
                name,
                version,
                weights,
                request,
            } = request
            else {
                work.push((client, request));
                continue;
            };
            if request.key() != &key {
                replies.push((
                    client,
                    error(
                        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                        "a model's weights came with a request for another model".into(),
                    ),
                ));
                continue;
            }
            match self.load(key, &name, version, &weights) {
                Ok(()) => work.push((client, *request)),
                Err(reply) => replies.push((client, reply)),
            }
        }
        let t = now();
        let mut groups: Vec<Group> = Vec::new();
        for (client, request) in work {
            let Some(m) = self.held(request.key()) else {
                replies.push((client, Reply::NeedModel));
                continue;
            };
            let held = &mut self.models[m];
            held.info.last_used = t;
            held.info.requests += 1;
            match groups.iter_mut().find(|(k, ..)| k == &held.key) {
                Some((_, _, group)) => group.push((client, request)),
                None => groups.push((
                    held.key.clone(),
                    held.model.clone(),
                    vec![(client, request)],
                )),
            }
        }
        for (_, model, group) in groups {
            self.serve_group(&model, group, &mut replies);
        }
        replies
    }

    /// Answers one model's requests of a batch.
    fn serve_group(
        &mut self,
        model: &Rc<Model>,
        group: Vec<(usize, Request)>,
        replies: &mut Vec<(usize, Reply)>,
    ) {
        let max = (super::MAX_BATCH.get() as usize).max(1);
        let size = model.image_size();
        let mut encodes = Vec::new();
        let mut generates = Vec::new();
        for (client, request) in group {
            match request {
                Request::Encode { image, .. } => encodes.push((client, image)),
                Request::EncodeBatch { images, .. } if images.is_empty() => {
                    replies.push((client, Reply::Embeddings(Vec::new())));
                }
                Request::EncodeBatch { images, .. } => {
                    if let Some(c) = self.clients.get_mut(&client) {
                        let n = images.len();
                        c.job = Some(Job {
                            model: model.clone(),
                            images,
                            done: 0,
                            out: Vec::with_capacity(n),
                        });
                    }
                }
                Request::Generate {
                    reference,
                    text,
                    png,
                    ..
                } => generates.push((client, reference, text, png)),
                Request::Walk {
                    from, to, points, ..
                } => {
                    let reply = guard(|| Ok(walk(model, &from, &to, points))).unwrap_or_else(|r| r);
                    replies.push((client, reply));
                }
                Request::Load { .. } => unreachable!("loads are served first"),
            }
        }
        // Encodes: decode each (a bad image is that request's error), then one pass.
        let mut ready = Vec::new();
        for (client, image) in encodes {
            match guard(|| decode(&image, size)) {
                Ok(chw) => ready.push((client, chw)),
                Err(reply) => replies.push((client, reply)),
            }
        }
        for piece in ready.chunks(max) {
            self.count_pass(piece.len());
            let chw: Vec<f32> = piece.iter().flat_map(|(_, c)| c.iter().copied()).collect();
            match guarded_result(|| model.encode_images(&chw, piece.len())) {
                Ok(all) => {
                    let d = model.embed_dim();
                    for (k, (client, _)) in piece.iter().enumerate() {
                        replies.push((*client, Reply::Embedding(all[k * d..(k + 1) * d].to_vec())));
                    }
                }
                Err(reply) => replies.extend(piece.iter().map(|(c, _)| (*c, reply.clone()))),
            }
        }
        // Generations: decode and check each, then one pass.
        let mut valid = Vec::new();
        for (client, reference, text, png) in generates {
            let checked = guard(|| {
                let pixels = match &reference {
                    Ref::Image(bytes) => Some(decode(bytes, size)?),
                    _ => None,
                };
                model
                    .check_query(as_reference(&reference, pixels.as_deref()), &text)
                    .map_err(|e| model_reply(&e))?;
                Ok(pixels)
            });
            match checked {
                Ok(pixels) => valid.push((client, reference, pixels, text, png)),
                Err(reply) => replies.push((client, reply)),
            }
        }
        for piece in valid.chunks(max) {
            self.count_pass(piece.len());
            let queries: Vec<(Reference<'_>, &str)> = piece
                .iter()
                .map(|(_, r, p, t, _)| (as_reference(r, p.as_deref()), t.as_str()))
                .collect();
            match guarded_result(|| model.generate_batch(&queries)) {
                Ok(generated) => {
                    for ((client, _, _, _, png), g) in piece.iter().zip(generated) {
                        let reply = if *png {
                            guard(|| {
                                image_io::chw_to_png(&g.image, size as u32)
                                    .map_err(|e| image_reply(&e))
                            })
                            .map(|png| Reply::Image {
                                png,
                                embedding: g.embedding,
                            })
                            .unwrap_or_else(|r| r)
                        } else {
                            Reply::Embedding(g.embedding)
                        };
                        replies.push((*client, reply));
                    }
                }
                Err(reply) => {
                    replies.extend(piece.iter().map(|(c, ..)| (*c, reply.clone())));
                }
            }
        }
    }

    fn count_pass(&self, requests: usize) {
        self.entry.batches.fetch_add(1, Ordering::Relaxed);
        self.entry
            .batched
            .fetch_add(requests as u64, Ordering::Relaxed);
    }

    /// Serves one piece of the next job in turn: a bad image ends the job with that image's
    /// error (naming its position), the last piece with the embeddings.
    fn step_job(&mut self) {
        let mut with_jobs: Vec<usize> = self
            .clients
            .iter()
            .filter(|(_, c)| c.job.is_some())
            .map(|(&i, _)| i)
            .collect();
        if with_jobs.is_empty() {
            return;
        }
        with_jobs.sort_unstable();
        let i = with_jobs
            .iter()
            .copied()
            .find(|&i| i > self.last_turn)
            .unwrap_or(with_jobs[0]);
        self.last_turn = i;
        let max = (super::MAX_BATCH.get() as usize).max(1);
        let (model, start, images) = {
            let job = self
                .clients
                .get_mut(&i)
                .and_then(|c| c.job.as_mut())
                .expect("a job");
            let end = (job.done + max).min(job.images.len());
            // Taken out: a piece's images are freed once it is served, not at the job's end.
            let images: Vec<Vec<u8>> = job.images[job.done..end]
                .iter_mut()
                .map(std::mem::take)
                .collect();
            (job.model.clone(), job.done, images)
        };
        let (size, d) = (model.image_size(), model.embed_dim());
        let result = guard(|| {
            let mut chw = Vec::with_capacity(images.len() * 3 * size * size);
            for (k, image) in images.iter().enumerate() {
                match decode(image, size) {
                    Ok(c) => chw.extend_from_slice(&c),
                    Err(Reply::Error {
                        sqlstate,
                        message,
                        detail,
                        hint,
                        ..
                    }) => {
                        return Err(Reply::Error {
                            sqlstate,
                            message,
                            detail,
                            hint,
                            image: (start + k + 1) as u32,
                        });
                    }
                    Err(reply) => return Err(reply),
                }
            }
            model
                .encode_images(&chw, images.len())
                .map_err(|e| model_reply(&e))
        });
        let n = images.len();
        drop(images);
        self.count_pass(n);
        let c = self.clients.get_mut(&i).expect("a client with a job");
        let job = c.job.as_mut().expect("a job");
        let reply = match result {
            Err(reply) => Some(reply),
            Ok(all) => {
                job.out.extend(all.chunks(d.max(1)).map(<[f32]>::to_vec));
                job.done = start + n;
                (job.done == job.images.len())
                    .then(|| Reply::Embeddings(std::mem::take(&mut job.out)))
            }
        };
        if let Some(reply) = reply {
            c.job = None;
            self.reply(i, reply);
        }
    }
}

fn error(code: PgSqlErrorCode, message: String) -> Reply {
    error_with(code, message, None, None)
}

fn error_with(
    code: PgSqlErrorCode,
    message: String,
    detail: Option<String>,
    hint: Option<String>,
) -> Reply {
    Reply::Error {
        sqlstate: code as i32,
        message,
        detail,
        hint,
        image: 0,
    }
}

/// An ERROR as the in-backend mode raises it (crate::errors), for the backend to raise.
fn report(r: crate::errors::Report) -> Reply {
    error_with(r.code, r.message, r.detail, r.hint)
}

fn image_reply(e: &image_io::ImageError) -> Reply {
    report(crate::errors::image(e))
}

fn model_reply(e: &ModelError) -> Reply {
    report(crate::errors::model(e))
}

/// A debug build's stand-in for an image a decoder panics on (tests/system/model_server.sh
/// shows the guard holds with it): no real input is known to make the decoders panic.
#[cfg(debug_assertions)]
const PANIC_IMAGE: &[u8] = b"synthsearch test: an image that panics the decoder";

/// Image bytes from a backend to CHW floats. Untrusted input: call it under [`guard`].
fn decode(bytes: &[u8], size: usize) -> Result<Vec<f32>, Reply> {
    #[cfg(debug_assertions)]
    if bytes == PANIC_IMAGE {
        panic!("a test image panicked the decoder");
    }
    image_io::decode(bytes, &DecodeLimits::default())
        .map(|image| image_io::to_chw(&image, size as u32))
        .map_err(|e| image_reply(&e))
}

fn as_reference<'a>(r: &'a Ref, pixels: Option<&'a [f32]>) -> Reference<'a> {
    match (r, pixels) {
        (Ref::None, _) => Reference::None,
        (Ref::Image(_), Some(chw)) => Reference::Image(chw),
        (Ref::Embedding(v), _) => Reference::Embedding(v),
        (Ref::Image(_), None) => Reference::None,
    }
}

/// Runs work on a request's data (decoding, a model call, PNG encoding, a model's weights): a
/// panic becomes that request's error reply (XX000), not a dead server and not every other
/// waiting request's failure. The profiles build with panic = "unwind" (Cargo.toml), which this
/// needs.
fn guard<T>(f: impl FnOnce() -> Result<T, Reply>) -> Result<T, Reply> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => Err(error_with(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            format!(
                "the model server failed: {}",
                crate::worker::panic_message(payload.as_ref())
            ),
            None,
            Some("The model server keeps running; its log has no more about this request.".into()),
        )),
    }
}

/// [`guard`] for a model call.
fn guarded_result<T>(f: impl FnOnce() -> Result<T, ModelError>) -> Result<T, Reply> {
    guard(|| f().map_err(|e| model_reply(&e)))
}

fn walk(model: &Model, from: &(Ref, String), to: &(Ref, String), points: u32) -> Reply {
    let size = model.image_size();
    let mut pixels = Vec::new();
    for (r, _) in [from, to] {
        pixels.push(match r {
            Ref::Image(bytes) => match decode(bytes, size) {
                Ok(chw) => Some(chw),
                Err(reply) => return reply,
            },
            _ => None,
        });
    }
    let walked = model.walk(
        WalkEnd {
            reference: as_reference(&from.0, pixels[0].as_deref()),
            text: &from.1,
        },
        WalkEnd {
            reference: as_reference(&to.0, pixels[1].as_deref()),
            text: &to.1,
        },
        points as usize,
        None,
    );
    match walked {
        Err(e) => model_reply(&e),
        Ok(points) => {
            let mut images = Vec::with_capacity(points.len());
            for (_, g) in points {
                match image_io::chw_to_png(&g.image, size as u32) {
                    Ok(png) => images.push(png),
                    Err(e) => return image_reply(&e),
                }
            }
            Reply::Images(images)
        }
    }
}
