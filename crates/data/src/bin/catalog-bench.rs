//! Prints how fast the synthetic catalog is drawn and written, beside the obvious single-threaded way.
//!
//! cargo run --release -p synthsearch-data --bin catalog-bench [-- --products 10000 --size 64]

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use image::ImageFormat;
use rayon::prelude::*;
use synthsearch_data::{CatalogConfig, generate, write_fashioniq};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} expects a number, not \"{v}\""))
        })
        .unwrap_or(default)
}

fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("catalog-bench-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

fn row(what: &str, how: &str, n: usize, seconds: f64) {
    println!(
        "| {what:<34} | {how:<40} | {:>10.0} | {:>8.3} |",
        n as f64 / seconds,
        seconds
    );
}

fn dir_size(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn main() {
    let products = arg("--products", 10_000);
    let size = arg("--size", 64) as u32;
    let threads = rayon::current_num_threads();
    println!(
        "machine: {} ({} cores available, rayon uses {threads} threads)",
        cpu_model(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("catalog: {products} products, {size}x{size} RGB\n");
    println!(
        "| {:<34} | {:<40} | {:>10} | {:>8} |",
        "step", "how", "images/s", "seconds"
    );
    println!("|{:-<36}|{:-<42}|{:->12}|{:->10}|", "", "", "", "");

    let cfg = CatalogConfig {
        products,
        image_size: size,
        ..CatalogConfig::default()
    };
    let t = Instant::now();
    let catalog = generate(&cfg);
    row(
        "attributes, pairs, captions",
        "generate(), one thread",
        products,
        t.elapsed().as_secs_f64(),
    );

    let t = Instant::now();
    let mut checksum = 0u64;
    for p in &catalog.products {
        checksum += u64::from(p.render(size).as_raw()[0]);
    }
    row("render", "one thread", products, t.elapsed().as_secs_f64());

    let t = Instant::now();
    let parallel: u64 = catalog
        .products
        .par_iter()
        .map(|p| u64::from(p.render(size).as_raw()[0]))
        .sum();
    row(
        "render",
        &format!("rayon, {threads} threads"),
        products,
        t.elapsed().as_secs_f64(),
    );
    assert_eq!(checksum, parallel, "rendering is deterministic");

    // The obvious way: one thread, image's save() per file.
    let dir = scratch("obvious");
    let t = Instant::now();
    for p in &catalog.products {
        p.render(size)
            .save(dir.join(format!("{}.png", p.id)))
            .expect("write png");
    }
    row(
        "render + png encode + write",
        "one thread, RgbImage::save",
        products,
        t.elapsed().as_secs_f64(),
    );
    let obvious_bytes = dir_size(&dir);
    let _ = fs::remove_dir_all(&dir);

    let dir = scratch("fashioniq");
    let t = Instant::now();
    let summary = write_fashioniq(&catalog, &dir, ImageFormat::Png).expect("write catalog");
    row(
        "render + png encode + write",
        &format!("write_fashioniq, rayon, {threads} threads"),
        products,
        t.elapsed().as_secs_f64(),
    );
    let _ = fs::remove_dir_all(&dir);
    println!(
        "\n{} pairs; {:.0} bytes per png ({:.0} the obvious way); write_fashioniq also writes the json files",
        summary.pairs,
        summary.image_bytes as f64 / products.max(1) as f64,
        obvious_bytes as f64 / products.max(1) as f64
    );
}
