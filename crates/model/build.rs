//! Links libtorch so that tests and the `synth` binary run without LD_LIBRARY_PATH: an rpath to
//! torch's lib folder, and `--no-as-needed -ltorch` so libtorch_cuda is kept (CUDA is otherwise
//! silently unavailable).
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath={lib}");
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch");
    }
}
