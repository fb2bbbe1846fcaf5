//! Settings, named `synthsearch.<name>`, each with a minimum, default and maximum.

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting, PostgresGucEnum};

/// Where libtorch runs the models.
#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Device {
    /// CUDA when this backend can see a GPU, otherwise the CPU.
    #[name = c"auto"]
    Auto,
    #[name = c"cpu"]
    Cpu,
    #[name = c"cuda"]
    Cuda,
}

/// `synthsearch.iterative_scan`, named as pgvector 0.8's `hnsw.iterative_scan`.
#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum IterativeScan {
    #[name = c"off"]
    Off,
    #[name = c"relaxed_order"]
    RelaxedOrder,
    #[name = c"strict_order"]
    StrictOrder,
}

pub const THREADS_MIN: i32 = 1;
pub const THREADS_DEFAULT: i32 = 1;
pub const THREADS_MAX: i32 = 256;

/// `synthsearch.train_memory_limit`, in MB: what one training job's data may take in its worker.
pub const TRAIN_MEMORY_MIN: i32 = 16;
pub const TRAIN_MEMORY_DEFAULT: i32 = 4096;
pub const TRAIN_MEMORY_MAX: i32 = i32::MAX;

pub static TRAIN_MEMORY_LIMIT: GucSetting<i32> = GucSetting::<i32>::new(TRAIN_MEMORY_DEFAULT);

/// [`TRAIN_MEMORY_LIMIT`] in bytes.
pub fn train_memory_limit_bytes() -> u64 {
    (TRAIN_MEMORY_LIMIT.get().max(TRAIN_MEMORY_MIN) as u64) << 20
}

pub static DEVICE: GucSetting<Device> = GucSetting::<Device>::new(Device::Auto);
pub static THREADS: GucSetting<i32> = GucSetting::<i32>::new(THREADS_DEFAULT);

pub fn init() {
    GucRegistry::define_enum_guc(
        c"synthsearch.device",
        c"Device that runs the models: auto, cpu or cuda.",
        c"auto uses CUDA when the backend can see a GPU and the CPU otherwise.",
        &DEVICE,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"synthsearch.threads",
        c"Threads libtorch may use in one backend.",
        c"A server runs many backends at once; keep this small.",
        &THREADS,
        THREADS_MIN,
        THREADS_MAX,
        GucContext::Userset,
        GucFlags::default(),
    );
    // SUSET: a role could otherwise lift the bound for its own jobs (ALTER ROLE ... SET).
    GucRegistry::define_int_guc(
        c"synthsearch.train_memory_limit",
        c"Memory one training job's data may take in its worker: the images as read and decoded.",
        c"A job over the limit fails with an error that says so, before anything is allocated.",
        &TRAIN_MEMORY_LIMIT,
        TRAIN_MEMORY_MIN,
        TRAIN_MEMORY_MAX,
        GucContext::Suset,
        GucFlags::UNIT_MB,
    );
    // Safety: called once from _PG_init with a static NUL-terminated name.
    unsafe { pgrx::pg_sys::MarkGUCPrefixReserved(c"synthsearch".as_ptr()) };
}
