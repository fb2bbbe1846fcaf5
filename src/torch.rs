//! libtorch in a backend: started lazily, with the thread count and device the settings ask for.

use crate::gucs::{DEVICE, Device, THREADS};
use pgrx::prelude::*;

/// The libtorch version this extension was built against (read from the torch installation by build.rs).
pub const LIBTORCH_VERSION: &str = env!("SYNTHSEARCH_LIBTORCH_VERSION");

/// The device the models would run on now, following `synthsearch.device`.
pub fn device() -> tch::Device {
    match DEVICE.get() {
        Device::Cpu => tch::Device::Cpu,
        Device::Cuda => {
            if !tch::Cuda::is_available() {
                crate::fmgr::error(
                    pgrx::PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                    "synthsearch.device is cuda, but this backend sees no CUDA device",
                );
            }
            tch::Device::Cuda(0)
        }
        Device::Auto => tch::Device::cuda_if_available(),
    }
}

/// Applies `synthsearch.threads` to libtorch's intra-op pool of this backend.
pub fn apply_threads() -> i64 {
    let want = THREADS.get();
    if tch::get_num_threads() != want {
        tch::set_num_threads(want);
    }
    tch::get_num_threads() as i64
}

/// What libtorch this backend uses: its version, the device the models would run on, its thread
/// count, and a result computed by it (so a broken link or load shows here, not later).
#[pg_extern(volatile, parallel_safe)]
fn synth_torch_info() -> TableIterator<
    'static,
    (
        name!(libtorch_version, String),
        name!(device, String),
        name!(threads, i64),
        name!(cuda_devices, i64),
        name!(check, f64),
    ),
> {
    let threads = apply_threads();
    let device = device();
    let t = tch::Tensor::from_slice(&[1.0f32, 2.0, 3.0]).to_device(device);
    let check = match t.f_dot(&t).and_then(|x| x.f_double_value(&[])) {
        Ok(v) => v,
        Err(e) => crate::fmgr::error(
            pgrx::PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            format!("libtorch failed: {e}"),
        ),
    };
    let device = match device {
        tch::Device::Cuda(i) => format!("cuda:{i}"),
        _ => "cpu".to_string(),
    };
    TableIterator::once((
        LIBTORCH_VERSION.to_string(),
        device,
        threads,
        tch::Cuda::device_count(),
        check,
    ))
}
