//! The model server: a background worker started with the postmaster (and restarted a second after
//! it exits) that holds the models on its device and answers every backend's requests.
//!
//! Its loop: take the channels backends have published, read one request from each (never
//! blocking on a backend), wait up to `synthsearch.server_batch_wait` for more while fewer than
//! `synthsearch.server_max_batch` have come, then answer them with one forward pass per model and
//! kind, and write the replies (a reply a slow backend cannot take yet waits in the server).
//! It connects to no database: a backend that finds its model missing sends the weights, so the
//! server never blocks DROP DATABASE and one process serves the whole cluster.

use super::message::{ModelKey, Ref, Reply, Request};
use super::shmem::{self, Info, MAX_MODELS, ModelInfo, Server};
use crate::model::functions::{image_error_of, model_error_of};
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
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
    /// A reply the backend's queue could not take whole yet.
    pending: Option<Vec<u8>>,
}

impl Drop for Client {
    fn drop(&mut self) {
        // Safety: attached by this process in attach(); detaching frees the queues' handles.
        unsafe { pg_sys::dsm_detach(self.segment) };
    }
}

struct Held {
    key: ModelKey,
    model: Model,
    info: ModelInfo,
}

struct State {
    index: usize,
    entry: &'static Server,
    generation: u32,
    device: tch::Device,
    clients: HashMap<usize, Client>,
    models: Vec<Held>,
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
            if batch.is_empty() {
                wait(Duration::from_secs(1));
                continue;
            }
            // Gather: a short wait lets the requests of other connections join this batch.
            let window = Duration::from_micros(super::BATCH_WAIT_US.get() as u64);
            let max = super::MAX_BATCH.get() as usize;
            let deadline = Instant::now() + window;
            // Only while some connection with a channel has not sent a request yet: waiting when
            // every one is in the batch would only add latency. Short sleeps, not the latch:
            // its timeout counts whole milliseconds.
            while batch.len() < max && batch.len() < self.clients.len() {
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
            self.publish(tch::get_num_threads());
        }
    }

    /// Attaches the channels backends have published for this server since the last look, and
    /// drops those they replaced.
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
            // has already gone and the segment with it. The mapping lives until Client::drop.
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
                        pending: None,
                    },
                );
            }
        }
        self.entry
            .clients
            .store(self.clients.len() as u32, Ordering::Relaxed);
    }

    /// One whole request from each client that has one; clients whose backend left are dropped.
    fn collect(&mut self) -> Vec<(usize, Request)> {
        let mut out = Vec::new();
        let mut gone = Vec::new();
        for (&i, c) in &self.clients {
            if c.pending.is_some() {
                continue;
            }
            let mut n = 0usize;
            let mut data = std::ptr::null_mut();
            // Safety: the queue is attached; the data is copied before the next receive.
            let r = unsafe { pg_sys::shm_mq_receive(c.requests, &mut n, &mut data, true) };
            match r {
                pg_sys::shm_mq_result::SHM_MQ_SUCCESS => {
                    // Safety: shm_mq returned n bytes at data.
                    let b = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), n) };
                    match Request::from_bytes(b) {
                        Ok(request) => out.push((i, request)),
                        Err(e) => {
                            pgrx::warning!("synthsearch model server: malformed request: {}", e.0);
                            gone.push(i);
                        }
                    }
                }
                pg_sys::shm_mq_result::SHM_MQ_DETACHED => gone.push(i),
                _ => {}
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

    fn held(&mut self, key: &ModelKey) -> Option<usize> {
        self.models.iter().position(|h| &h.key == key)
    }

    fn load(&mut self, key: ModelKey, name: String, version: i32, weights: &[u8]) -> Reply {
        if self.held(&key).is_some() {
            return Reply::Loaded;
        }
        let model = match Model::from_bytes(weights, self.device) {
            Ok(m) => m,
            Err(ModelError::UnsupportedFormat { found, supported }) => {
                return error(
                    PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                    format!(
                        "model checkpoint format version {found} is not supported by synthsearch {} (it reads version {supported})",
                        env!("CARGO_PKG_VERSION")
                    ),
                );
            }
            Err(e) => {
                return error(
                    PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
                    format!(
                        "model {} ({name} version {version}) cannot be loaded: {e}",
                        key.id
                    ),
                );
            }
        };
        // The least recently used model makes room.
        let keep = (super::SERVER_MODELS.get() as usize).clamp(1, MAX_MODELS);
        while self.models.len() >= keep {
            let oldest = self
                .models
                .iter()
                .enumerate()
                .min_by_key(|(_, h)| h.info.last_used)
                .map(|(i, _)| i)
                .unwrap();
            self.models.remove(oldest);
        }
        let info = ModelInfo::new(
            key.database,
            key.id,
            &name,
            version,
            weights.len() as u64,
            now(),
        );
        self.models.push(Held { key, model, info });
        self.entry.loads.fetch_add(1, Ordering::Relaxed);
        Reply::Loaded
    }

    /// Answers a batch: loads first, then per model one pass for the encodes and one for the
    /// generations (in pieces of at most server_max_batch), walks one at a time.
    fn serve(&mut self, batch: Vec<(usize, Request)>) -> Vec<(usize, Reply)> {
        self.entry
            .requests
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        let mut replies = Vec::with_capacity(batch.len());
        let mut by_model: Vec<(usize, Vec<(usize, Request)>)> = Vec::new();
        for (client, request) in batch {
            if let Request::Load {
                key,
                name,
                version,
                weights,
            } = request
            {
                let reply = self.load(key, name, version, &weights);
                replies.push((client, reply));
                continue;
            }
            match self.held(request.key()) {
                None => replies.push((client, Reply::NeedModel)),
                Some(m) => match by_model.iter_mut().find(|(i, _)| *i == m) {
                    Some((_, group)) => group.push((client, request)),
                    None => by_model.push((m, vec![(client, request)])),
                },
            }
        }
        let max = (super::MAX_BATCH.get() as usize).max(1);
        for (m, group) in by_model {
            let t = now();
            let held = &mut self.models[m];
            held.info.last_used = t;
            held.info.requests += group.len() as u64;
            let model = &held.model;
            let mut encodes = Vec::new();
            let mut generates = Vec::new();
            for (client, request) in group {
                match request {
                    Request::Encode { image, .. } => encodes.push((client, image)),
                    Request::EncodeBatch { images, .. } => {
                        let reply = encode_batch(model, self.entry, &images, max);
                        replies.push((client, reply));
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
                        let reply = guarded(|| walk(model, &from, &to, points));
                        replies.push((client, reply));
                    }
                    Request::Load { .. } => unreachable!("loads are served above"),
                }
            }
            let size = model.image_size();
            // Encodes: decode each (a bad image is that request's error), then one pass.
            let mut ready = Vec::new();
            for (client, image) in encodes {
                match decode(&image, size) {
                    Ok(chw) => ready.push((client, chw)),
                    Err(reply) => replies.push((client, reply)),
                }
            }
            for piece in ready.chunks(max) {
                self.entry.batches.fetch_add(1, Ordering::Relaxed);
                self.entry
                    .batched
                    .fetch_add(piece.len() as u64, Ordering::Relaxed);
                let chw: Vec<f32> = piece.iter().flat_map(|(_, c)| c.iter().copied()).collect();
                match guarded_result(|| model.encode_images(&chw, piece.len())) {
                    Ok(all) => {
                        let d = model.embed_dim();
                        for (k, (client, _)) in piece.iter().enumerate() {
                            replies.push((
                                *client,
                                Reply::Embedding(all[k * d..(k + 1) * d].to_vec()),
                            ));
                        }
                    }
                    Err(reply) => replies.extend(piece.iter().map(|(c, _)| (*c, reply.clone()))),
                }
            }
            // Generations: decode and check each, then one pass.
            let mut ready = Vec::new();
            for (client, reference, text, png) in generates {
                let pixels = match &reference {
                    Ref::Image(bytes) => match decode(bytes, size) {
                        Ok(chw) => Some(chw),
                        Err(reply) => {
                            replies.push((client, reply));
                            continue;
                        }
                    },
                    _ => None,
                };
                ready.push((client, reference, pixels, text, png));
            }
            let mut valid = Vec::new();
            for (client, reference, pixels, text, png) in ready {
                let r = as_reference(&reference, pixels.as_deref());
                match model.check_query(r, &text) {
                    Ok(()) => valid.push((client, reference, pixels, text, png)),
                    Err(e) => replies.push((client, model_reply(&e))),
                }
            }
            for piece in valid.chunks(max) {
                self.entry.batches.fetch_add(1, Ordering::Relaxed);
                self.entry
                    .batched
                    .fetch_add(piece.len() as u64, Ordering::Relaxed);
                let queries: Vec<(Reference<'_>, &str)> = piece
                    .iter()
                    .map(|(_, r, p, t, _)| (as_reference(r, p.as_deref()), t.as_str()))
                    .collect();
                match guarded_result(|| model.generate_batch(&queries)) {
                    Ok(generated) => {
                        for ((client, _, _, _, png), g) in piece.iter().zip(generated) {
                            let reply = if *png {
                                match image_io::chw_to_png(&g.image, size as u32) {
                                    Ok(png) => Reply::Image {
                                        png,
                                        embedding: g.embedding,
                                    },
                                    Err(e) => image_reply(&e),
                                }
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
        replies
    }
}

/// The embeddings of many images from one request: one pass per `max` of them; a bad image is
/// the request's error, naming it.
fn encode_batch(model: &Model, entry: &Server, images: &[Vec<u8>], max: usize) -> Reply {
    let size = model.image_size();
    let d = model.embed_dim();
    let mut out = Vec::with_capacity(images.len());
    for (p, piece) in images.chunks(max).enumerate() {
        let mut chw = Vec::with_capacity(piece.len() * 3 * size * size);
        for (k, image) in piece.iter().enumerate() {
            match decode(image, size) {
                Ok(c) => chw.extend_from_slice(&c),
                Err(Reply::Error { sqlstate, message }) => {
                    return Reply::Error {
                        sqlstate,
                        message: format!("image {}: {message}", p * max + k + 1),
                    };
                }
                Err(reply) => return reply,
            }
        }
        entry.batches.fetch_add(1, Ordering::Relaxed);
        entry
            .batched
            .fetch_add(piece.len() as u64, Ordering::Relaxed);
        match guarded_result(|| model.encode_images(&chw, piece.len())) {
            Ok(all) => out.extend(all.chunks(d).map(<[f32]>::to_vec)),
            Err(reply) => return reply,
        }
    }
    Reply::Embeddings(out)
}

fn error(code: PgSqlErrorCode, message: String) -> Reply {
    Reply::Error {
        sqlstate: code as i32,
        message,
    }
}

fn image_reply(e: &image_io::ImageError) -> Reply {
    let (code, message) = image_error_of(e);
    error(code, message)
}

fn model_reply(e: &ModelError) -> Reply {
    let (code, message) = model_error_of(e);
    error(code, message)
}

fn decode(bytes: &[u8], size: usize) -> Result<Vec<f32>, Reply> {
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

/// Runs a model call; a panic (a libtorch failure) becomes an error reply, not a dead server.
fn guarded_result<T>(f: impl FnOnce() -> Result<T, ModelError>) -> Result<T, Reply> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(model_reply(&e)),
        Err(payload) => Err(error(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            format!(
                "the model server failed: {}",
                crate::worker::panic_message(payload.as_ref())
            ),
        )),
    }
}

fn guarded(f: impl FnOnce() -> Reply) -> Reply {
    match guarded_result(|| Ok(f())) {
        Ok(r) | Err(r) => r,
    }
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
