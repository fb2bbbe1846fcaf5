//! The model server: one process (or `synthsearch.servers` of them) that holds the models on the
//! device and answers every backend's `synth_encode`, `synth_query`, `synth_generate`, walk and
//! bare-synthquery requests, batching those that arrive together. Backends then never load
//! weights, never start libtorch or a CUDA context, and the first query of a connection costs a
//! round trip instead of a model load.
//!
//! | file         | what                                                                     |
//! | ------------ | ------------------------------------------------------------------------ |
//! | `message.rs` | the request and reply format                                             |
//! | `shmem.rs`   | the shared state: one entry per server, one channel slot per backend     |
//! | `client.rs`  | the backend's side: its channel, send the request and wait for the reply |
//! | `worker.rs`  | the server's loop: gather, batch, answer                                 |
//! | `status.rs`  | `synth_model_server` and `synth_model_server_models`                     |
//!
//! Limits: a request is at most [`MAX_REQUEST_BYTES`] and a model's weights at most
//! [`MAX_MODEL_BYTES`], both checked by the backend before it sends and by the server from the
//! length a message announces before the message is read.
//!
//! `synthsearch.mode` picks it: `server` is the default when the library is preloaded
//! (shared_preload_libraries), `backend` (every backend loads its own copy, as before) otherwise.

pub mod client;
pub mod message;
mod shmem;
mod status;
mod worker;

use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting, PostgresGucEnum, pg_sys};

/// Where the models run for this session.
#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// In this backend: it loads its own copy of the model (and its own CUDA context).
    #[name = c"backend"]
    Backend,
    /// In the model server, shared by every backend (needs shared_preload_libraries).
    #[name = c"server"]
    Server,
}

pub const SERVERS_MIN: i32 = 1;
pub const SERVERS_DEFAULT: i32 = 1;
pub const SERVERS_MAX: i32 = shmem::MAX_SERVERS as i32;
pub const BATCH_WAIT_MIN: i32 = 0;
pub const BATCH_WAIT_DEFAULT: i32 = 200;
pub const BATCH_WAIT_MAX: i32 = 100_000;
pub const MAX_BATCH_MIN: i32 = 1;
pub const MAX_BATCH_DEFAULT: i32 = 64;
pub const MAX_BATCH_MAX: i32 = 4096;
pub const SERVER_MODELS_MIN: i32 = 1;
pub const SERVER_MODELS_DEFAULT: i32 = 4;
pub const SERVER_MODELS_MAX: i32 = shmem::MAX_MODELS as i32;
pub const SERVER_THREADS_MIN: i32 = 0;
pub const SERVER_THREADS_DEFAULT: i32 = 0;
pub const SERVER_THREADS_MAX: i32 = 256;

/// The most bytes of one request to a model server, a model's weights aside: two images at the
/// decoder's limit (a walk between two photos, 32 MiB each) and 1 MiB for the wishes and the key.
/// The backend refuses a longer one (54000) and the server refuses one announced longer before it
/// reads or allocates any of it; a `synth_encode_batch` whose images pass it goes in several.
pub const MAX_REQUEST_BYTES: usize = 2 * synthsearch_data::image_io::DEFAULT_MAX_BYTES + (1 << 20);
/// The most bytes of a model's weights a server loads (1 GiB). A checkpoint of the configs this
/// extension trains is tens of MB; a server holds `server_models` of them (8 at most), so this
/// keeps what one connection can make it allocate for a load far below its device's memory, while
/// leaving room for much larger models. A larger one runs with synthsearch.mode = backend.
pub const MAX_MODEL_BYTES: usize = 1 << 30;

// Two settings objects, one registered: the default depends on whether the library is preloaded.
static MODE_PRELOADED: GucSetting<Mode> = GucSetting::<Mode>::new(Mode::Server);
static MODE_LOADED: GucSetting<Mode> = GucSetting::<Mode>::new(Mode::Backend);
static PRELOADED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub static SERVERS: GucSetting<i32> = GucSetting::<i32>::new(SERVERS_DEFAULT);
pub static BATCH_WAIT_US: GucSetting<i32> = GucSetting::<i32>::new(BATCH_WAIT_DEFAULT);
pub static MAX_BATCH: GucSetting<i32> = GucSetting::<i32>::new(MAX_BATCH_DEFAULT);
pub static SERVER_MODELS: GucSetting<i32> = GucSetting::<i32>::new(SERVER_MODELS_DEFAULT);
pub static SERVER_THREADS: GucSetting<i32> = GucSetting::<i32>::new(SERVER_THREADS_DEFAULT);

fn mode_setting() -> &'static GucSetting<Mode> {
    if PRELOADED.load(std::sync::atomic::Ordering::Relaxed) {
        &MODE_PRELOADED
    } else {
        &MODE_LOADED
    }
}

/// Settings; when preloading, the shared memory and the servers too. Before the prefix is
/// reserved.
pub fn init() {
    // Safety: a plain read of a flag the postmaster sets around shared_preload_libraries.
    let preloading = unsafe { pg_sys::process_shared_preload_libraries_in_progress };
    PRELOADED.store(preloading, std::sync::atomic::Ordering::Relaxed);
    GucRegistry::define_enum_guc(
        c"synthsearch.mode",
        c"Where the models run: server (one model server for all connections) or backend (each connection loads its own copy).",
        c"server needs synthsearch in shared_preload_libraries and is the default there; backend is the default otherwise.",
        mode_setting(),
        GucContext::Suset,
        GucFlags::default(),
    );
    // A postmaster setting can only be made while preloading (later it is a FATAL error).
    if preloading {
        GucRegistry::define_int_guc(
            c"synthsearch.servers",
            c"Model servers started with the server (each holds its own copy of the models).",
            c"A backend uses server (its process number modulo this).",
            &SERVERS,
            SERVERS_MIN,
            SERVERS_MAX,
            GucContext::Postmaster,
            GucFlags::default(),
        );
    }
    GucRegistry::define_int_guc(
        c"synthsearch.server_batch_wait",
        c"Microseconds the model server waits for more requests to batch with the first.",
        c"0 batches only the requests that arrived together.",
        &BATCH_WAIT_US,
        BATCH_WAIT_MIN,
        BATCH_WAIT_MAX,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"synthsearch.server_max_batch",
        c"Most requests the model server answers with one forward pass.",
        c"",
        &MAX_BATCH,
        MAX_BATCH_MIN,
        MAX_BATCH_MAX,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"synthsearch.server_models",
        c"Models one model server holds at once; the least recently used makes room.",
        c"",
        &SERVER_MODELS,
        SERVER_MODELS_MIN,
        SERVER_MODELS_MAX,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"synthsearch.server_threads",
        c"Threads libtorch may use in the model server (0: one per core).",
        c"",
        &SERVER_THREADS,
        SERVER_THREADS_MIN,
        SERVER_THREADS_MAX,
        GucContext::Sighup,
        GucFlags::default(),
    );
    if preloading {
        shmem::init();
        worker::register(SERVERS.get());
    }
}

/// Whether this session's models run in the model server.
pub fn enabled() -> bool {
    if mode_setting().get() != Mode::Server {
        return false;
    }
    if !shmem::available() {
        pgrx::ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "synthsearch.mode = server needs synthsearch in shared_preload_libraries",
            "Add it there and restart the server, or set synthsearch.mode = backend."
        );
    }
    true
}
