//! Links libtorch so that the extension loads inside PostgreSQL: rpath to torch's lib folder (the
//! server has no LD_LIBRARY_PATH for it) and --no-as-needed so libtorch_cuda is kept and CUDA
//! works where there is a GPU.
fn main() {
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB")
        .expect("torch-sys did not report the libtorch folder");
    println!("cargo:rustc-link-arg=-Wl,-rpath={lib}");
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    println!("cargo:rustc-link-arg=-ltorch");
    println!("cargo:rustc-link-arg=-Wl,--as-needed");
    // torch/lib/../version.py holds `__version__ = '2.11.0+cu130'`.
    let version = std::fs::read_to_string(std::path::Path::new(&lib).join("../version.py"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("__version__ = ")
                    .map(|v| v.trim_matches(['\'', '"']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=SYNTHSEARCH_LIBTORCH_VERSION={version}");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
}
