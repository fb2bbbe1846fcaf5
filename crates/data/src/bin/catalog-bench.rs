//! Prints how fast the synthetic catalog is drawn and written, beside the obvious single-threaded way.
//!
//! cargo run --release -p synthsearch-data --bin catalog-bench [-- --products 10000 --size 64]

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use image::ImageFormat;
use rayon::prelude::*;
use synthsearch_data::catalog::Variation;
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

/// CPU seconds this process has used (user + system), from /proc/self/stat in 1/100 s ticks.
/// The machine is shared, so CPU time says more about our cost than wall time does.
fn cpu_seconds() -> f64 {
    let stat = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Best of three runs: the machine is shared, so the fastest run is the least disturbed one.
fn best<T>(f: impl FnMut() -> T) -> (T, f64, f64) {
    best_after(|| {}, f)
}

/// Like [`best`], running `before` untimed ahead of each run.
fn best_after<T>(mut before: impl FnMut(), mut f: impl FnMut() -> T) -> (T, f64, f64) {
    let mut out = None;
    let mut fastest = f64::MAX;
    let mut cpu = f64::MAX;
    for _ in 0..3 {
        before();
        let (t, c) = (Instant::now(), cpu_seconds());
        let value = f();
        fastest = fastest.min(t.elapsed().as_secs_f64());
        cpu = cpu.min(cpu_seconds() - c);
        out = Some(value);
    }
    (out.expect("ran at least once"), fastest, cpu)
}

fn row(what: &str, how: &str, n: usize, (seconds, cpu): (f64, f64)) {
    let per_cpu = if cpu > 0.0 {
        format!("{:.0}", n as f64 / cpu)
    } else {
        "-".into()
    };
    println!(
        "| {what:<28} | {how:<36} | {:>9.0} | {:>7.3} | {per_cpu:>12} |",
        n as f64 / seconds,
        seconds
    );
}

/// Flushes earlier writes, so each step pays only for its own.
fn settle() {
    let _ = std::process::Command::new("sync").status();
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
        "machine: {} ({} cores available, rayon uses {threads} threads), load average before: {}",
        cpu_model(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_average()
    );
    println!("catalog: {products} products, {size}x{size} RGB; best of 3 runs each\n");
    println!(
        "| {:<28} | {:<36} | {:>9} | {:>7} | {:>12} |",
        "step", "how", "images/s", "wall s", "images/cpu-s"
    );
    println!(
        "|{:-<30}|{:-<38}|{:->11}|{:->9}|{:->14}|",
        "", "", "", "", ""
    );

    let cfg = CatalogConfig {
        products,
        image_size: size,
        ..CatalogConfig::default()
    };
    let (catalog, secs, cpu) = best(|| generate(&cfg));
    row(
        "attributes, pairs, captions",
        "generate(), one thread",
        products,
        (secs, cpu),
    );

    let (checksum, secs, cpu) = best(|| {
        let mut sum = 0u64;
        for p in &catalog.products {
            sum += u64::from(p.render(size).as_raw()[0]);
        }
        sum
    });
    row("render", "one thread", products, (secs, cpu));

    let (parallel, secs, cpu) = best(|| {
        catalog
            .products
            .par_iter()
            .map(|p| u64::from(p.render(size).as_raw()[0]))
            .sum::<u64>()
    });
    row(
        "render",
        &format!("rayon, {threads} threads"),
        products,
        (secs, cpu),
    );
    assert_eq!(checksum, parallel, "rendering is deterministic");

    // The photo-like drawings: framing, silhouette, backdrop, light, shadow, blur and noise vary.
    let (checksum, secs, cpu) = best(|| {
        let mut sum = 0u64;
        for p in &catalog.products {
            sum += u64::from(p.render_as(size, Variation::Photo).as_raw()[0]);
        }
        sum
    });
    row(
        "render, variation photo",
        "one thread",
        products,
        (secs, cpu),
    );
    let (parallel, secs, cpu) = best(|| {
        catalog
            .products
            .par_iter()
            .map(|p| u64::from(p.render_as(size, Variation::Photo).as_raw()[0]))
            .sum::<u64>()
    });
    row(
        "render, variation photo",
        &format!("rayon, {threads} threads"),
        products,
        (secs, cpu),
    );
    assert_eq!(checksum, parallel, "photo rendering is deterministic");

    // The obvious way: one thread, image's save() per file.
    let dir = scratch("obvious");
    let (_, secs, cpu) = best_after(settle, || {
        for p in &catalog.products {
            p.render(size)
                .save(dir.join(format!("{}.png", p.id)))
                .expect("write png");
        }
    });
    row(
        "render + png + write",
        "one thread, RgbImage::save",
        products,
        (secs, cpu),
    );
    let obvious_bytes = dir_size(&dir);
    let _ = fs::remove_dir_all(&dir);

    let dir = scratch("fashioniq");
    let (summary, secs, cpu) = best_after(settle, || {
        write_fashioniq(&catalog, &dir, ImageFormat::Png).expect("write catalog")
    });
    row(
        "render + png + write",
        &format!("write_fashioniq, rayon, {threads} threads"),
        products,
        (secs, cpu),
    );
    let _ = fs::remove_dir_all(&dir);
    println!(
        "\n{} pairs; {:.0} bytes per png ({:.0} the obvious way); write_fashioniq also writes the json files",
        summary.pairs,
        summary.image_bytes as f64 / products.max(1) as f64,
        obvious_bytes as f64 / products.max(1) as f64
    );
}
