//! Distance-kernel throughput: the vectorized kernels beside a plain scalar loop and beside a plain
//! read of the same memory (the bandwidth ceiling).
//!
//!     cargo run --release -p synthsearch-vector --bin kernel-bench

use std::hint::black_box;
use std::time::Instant;
use synthsearch_vector::{cosine_distance, dot, l2_squared};

/// Bytes of vectors scanned per measurement: larger than the last-level cache.
const SET_BYTES: usize = 256 << 20;
const ROUNDS: usize = 5;

fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect()
}

/// Best-of-rounds GB/s of `f` applied to every vector of `set`.
fn gbps(set: &[f32], dims: usize, mut f: impl FnMut(&[f32]) -> f32) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let mut acc = 0.0f32;
        for v in set.chunks_exact(dims) {
            acc += f(v);
        }
        black_box(acc);
        best = best.min(t.elapsed().as_secs_f64());
    }
    (set.len() * 4) as f64 / best / 1e9
}

fn scalar_l2(a: &[f32], b: &[f32]) -> f32 {
    let mut s = 0.0;
    for i in 0..a.len() {
        let d = a[i] - b[i];
        s += d * d;
    }
    s
}

fn read_ceiling(set: &[f32]) -> f64 {
    // Integer addition may be reordered freely, so this loop runs at the memory's speed.
    let words: &[u32] =
        unsafe { std::slice::from_raw_parts(set.as_ptr() as *const u32, set.len()) };
    let mut best = f64::MAX;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let s = words.iter().fold(0u32, |a, &w| a.wrapping_add(w));
        black_box(s);
        best = best.min(t.elapsed().as_secs_f64());
    }
    (set.len() * 4) as f64 / best / 1e9
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let wide = if cfg!(target_arch = "x86_64") && std::is_x86_feature_detected!("avx2") {
        "AVX2+FMA"
    } else {
        "baseline"
    };
    format!("{cpu}, {cores} cores, kernels: {wide}")
}

fn main() {
    println!("machine: {}", machine());
    println!(
        "set: {} MiB of float4 per measurement, best of {ROUNDS}",
        SET_BYTES >> 20
    );
    println!();
    println!(
        "| dims | l2 GB/s | inner product GB/s | cosine GB/s | scalar l2 loop GB/s | plain read GB/s |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for dims in [128, 512, 2048] {
        let n = SET_BYTES / 4 / dims * dims;
        let set = data(n, dims as u64);
        let q = data(dims, 7);
        let l2 = gbps(&set, dims, |v| l2_squared(&q, v));
        let ip = gbps(&set, dims, |v| dot(&q, v));
        let cos = gbps(&set, dims, |v| cosine_distance(&q, v) as f32);
        let scalar = gbps(&set, dims, |v| scalar_l2(&q, v));
        let read = read_ceiling(&set);
        println!("| {dims} | {l2:.1} | {ip:.1} | {cos:.1} | {scalar:.1} | {read:.1} |");
    }
}
