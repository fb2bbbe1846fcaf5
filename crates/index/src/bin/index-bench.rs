//! Builds the index over in-memory pages on seeded clustered vectors and prints build time, size,
//! and recall@10 and queries/s at several nprobe settings beside an exact brute-force scan.
//!
//! cargo run --release -p synthsearch-index --bin index-bench -- --n 1000000 --dims 128

use rayon::prelude::*;
use std::time::Instant;
use synthsearch_index::options::BuildOptions;
use synthsearch_index::testdata::Mixture;
use synthsearch_index::{Build, MemRelation, Metric, Relation, Scan, ScanOptions, Tid};

struct Args {
    n: usize,
    dims: usize,
    clusters: usize,
    spread: f32,
    queries: usize,
    brute_queries: usize,
    lists: u32,
    nprobe: Vec<u32>,
    memory_mb: usize,
    seed: u64,
    k: usize,
    /// Latent dimensions of an overlapping mixture (0: the mixture lives in `dims`).
    latent: usize,
    noise: f32,
    /// Write the data (`id<TAB>[v,...]`), the queries (likewise) and the exact top k of each query
    /// (`qid<TAB>{ids}`) to these files for COPY, and stop.
    emit: Option<(String, String, String)>,
}

fn parse() -> Args {
    let mut a = Args {
        n: 100_000,
        dims: 128,
        clusters: 0,
        spread: 0.5,
        queries: 1000,
        brute_queries: 50,
        lists: 0,
        nprobe: vec![1, 2, 4, 8, 16, 32, 64],
        memory_mb: 256,
        seed: 42,
        k: 10,
        latent: 0,
        noise: 0.05,
        emit: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--n" => a.n = v.parse().expect("--n"),
            "--dims" => a.dims = v.parse().expect("--dims"),
            "--clusters" => a.clusters = v.parse().expect("--clusters"),
            "--spread" => a.spread = v.parse().expect("--spread"),
            "--queries" => a.queries = v.parse().expect("--queries"),
            "--brute-queries" => a.brute_queries = v.parse().expect("--brute-queries"),
            "--lists" => a.lists = v.parse().expect("--lists"),
            "--nprobe" => a.nprobe = v.split(',').map(|s| s.parse().expect("--nprobe")).collect(),
            "--memory-mb" => a.memory_mb = v.parse().expect("--memory-mb"),
            "--seed" => a.seed = v.parse().expect("--seed"),
            "--k" => a.k = v.parse().expect("--k"),
            "--latent" => a.latent = v.parse().expect("--latent"),
            "--noise" => a.noise = v.parse().expect("--noise"),
            "--emit" => {
                let p: Vec<&str> = v.split(',').collect();
                assert!(p.len() == 3, "--emit data.tsv,queries.tsv,truth.tsv");
                a.emit = Some((p[0].to_string(), p[1].to_string(), p[2].to_string()));
            }
            other => {
                eprintln!(
                    "unknown option {other}; options: --n --dims --clusters --spread --queries --brute-queries --lists --nprobe a,b,c --memory-mb --seed --k --latent --noise --emit data.tsv,queries.tsv,truth.tsv"
                );
                std::process::exit(2);
            }
        }
        i += 2;
    }
    if a.clusters == 0 {
        a.clusters = (a.n / 1000).max(16);
    }
    a
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The 1-minute load average: the cores are shared, so timings are read beside it.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split(' ').next().unwrap_or("?").to_string())
        .unwrap_or_default()
}

/// Rows `id<TAB>[v,...]`, ids from 1, for COPY into (id int, emb embedding).
fn emit(path: &str, data: &[f32], d: usize) -> std::io::Result<()> {
    use std::io::Write;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    for (i, x) in data.chunks_exact(d).enumerate() {
        write!(w, "{}\t[", i + 1)?;
        for (j, v) in x.iter().enumerate() {
            if j > 0 {
                w.write_all(b",")?;
            }
            write!(w, "{v}")?;
        }
        w.write_all(b"]\n")?;
    }
    w.flush()
}

fn tid(i: usize) -> Tid {
    Tid::new((i / 100) as u32, (i % 100 + 1) as u16)
}

fn main() {
    let a = parse();
    let d = a.dims;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "machine: {cores} cores, {}; load average at start: {}",
        cpu_model(),
        load()
    );
    let mix = if a.latent > 0 {
        println!(
            "data: n={} dims={} Gaussian mixture of {} clusters in {} latent dimensions (centers N(0,1), spread {}), \
             projected by a fixed N(0,1/{}) matrix, plus noise {}, seed {}; {} queries from the same mixture",
            a.n, d, a.clusters, a.latent, a.spread, a.latent, a.noise, a.seed, a.queries
        );
        Mixture::latent(d, a.latent, a.clusters, a.spread, a.noise, a.seed)
    } else {
        println!(
            "data: n={} dims={} Gaussian mixture of {} clusters, centers N(0,1), spread {}, seed {}; {} queries from the same mixture",
            a.n, d, a.clusters, a.spread, a.seed, a.queries
        );
        Mixture::new(d, a.clusters, a.spread, a.seed)
    };
    let t = Instant::now();
    let data: Vec<f32> = (0..a.n as u64)
        .into_par_iter()
        .flat_map_iter(|i| mix.point(a.seed + 1, i))
        .collect();
    let queries: Vec<f32> = (0..a.queries as u64)
        .into_par_iter()
        .flat_map_iter(|i| mix.point(a.seed + 2, i))
        .collect();
    eprintln!("generated in {:.1}s", t.elapsed().as_secs_f64());

    // Exact top-k for every query (parallel; not timed as a result).
    let t = Instant::now();
    let truth: Vec<Vec<Tid>> = queries
        .par_chunks_exact(d)
        .map(|q| {
            let mut best: Vec<(f32, usize)> = Vec::with_capacity(a.k + 1);
            for (i, x) in data.chunks_exact(d).enumerate() {
                let dist = synthsearch_vector::l2_squared(q, x);
                if best.len() < a.k || dist < best[a.k - 1].0 {
                    let pos = best.partition_point(|b| b.0 <= dist);
                    best.insert(pos, (dist, i));
                    best.truncate(a.k);
                }
            }
            best.iter().map(|b| tid(b.1)).collect()
        })
        .collect();
    eprintln!("ground truth in {:.1}s", t.elapsed().as_secs_f64());
    if let Some((data_path, query_path, truth_path)) = &a.emit {
        emit(data_path, &data, d).expect("writing the data");
        emit(query_path, &queries, d).expect("writing the queries");
        // qid<TAB>{ids of the exact top k, nearest first}
        let lines: String = truth
            .iter()
            .enumerate()
            .map(|(q, ids)| {
                let ids: Vec<String> = ids
                    .iter()
                    .map(|t| (t.block as usize * 100 + t.offset as usize).to_string())
                    .collect();
                format!("{}\t{{{}}}\n", q + 1, ids.join(","))
            })
            .collect();
        std::fs::write(truth_path, lines).expect("writing the truth");
        eprintln!("wrote {data_path}, {query_path} and {truth_path}");
        return;
    }

    // Brute force from one thread, for queries/s.
    let t = Instant::now();
    let bq = a.brute_queries.min(a.queries);
    let mut sink = 0.0f32;
    for q in queries.chunks_exact(d).take(bq) {
        let mut best = f32::INFINITY;
        for x in data.chunks_exact(d) {
            best = best.min(synthsearch_vector::l2_squared(q, x));
        }
        sink += best;
    }
    let brute_qps = bq as f64 / t.elapsed().as_secs_f64();
    std::hint::black_box(sink);

    let rel = MemRelation::new();
    let mut opts = BuildOptions::new(d, Metric::L2);
    opts.lists = a.lists;
    opts.memory = a.memory_mb << 20;
    let t = Instant::now();
    let mut b = Build::new(opts, a.n as u64).expect("options");
    for x in data.chunks_exact(d) {
        b.sample(x).unwrap();
    }
    let t_sample = t.elapsed();
    loop {
        let (done, total) = b.train_step();
        if done == total {
            break;
        }
    }
    let t_train = t.elapsed();
    b.begin_load(&rel);
    for (i, x) in data.chunks_exact(d).enumerate() {
        b.load(&rel, tid(i), x).unwrap();
    }
    let stats = b.finish(&rel);
    let build = t.elapsed();
    println!(
        "build: {:.1}s (sample {:.1}s, k-means {:.1}s, assign+write {:.1}s) with {} threads, {} lists, {} sampled rows, memory budget {} MiB",
        build.as_secs_f64(),
        t_sample.as_secs_f64(),
        (t_train - t_sample).as_secs_f64(),
        (build - t_train).as_secs_f64(),
        rayon::current_num_threads(),
        stats.lists,
        stats.sampled,
        a.memory_mb
    );
    println!(
        "index size: {} pages x 8 KiB = {:.1} MiB (vectors alone would be {:.1} MiB)",
        rel.len(),
        rel.size_bytes() as f64 / (1 << 20) as f64,
        (a.n * d * 4) as f64 / (1 << 20) as f64
    );
    println!();
    println!(
        "| search | recall@{} | queries/s (1 thread) | codes scanned/query | reranked/query |",
        a.k
    );
    println!("|---|---|---|---|---|");
    println!(
        "| exact brute force | 1.000 | {brute_qps:.0} | - | {} |",
        a.n
    );
    for &np in &a.nprobe {
        let so = ScanOptions {
            nprobe: np,
            ..ScanOptions::default()
        };
        let t = Instant::now();
        let mut hits = 0usize;
        let (mut codes, mut reranked) = (0u64, 0u64);
        for (qi, q) in queries.chunks_exact(d).enumerate() {
            let mut s = Scan::new(&rel, q, so).expect("scan");
            let got: Vec<Tid> = s.iter(&rel).take(a.k).map(|h| h.tid).collect();
            hits += got.iter().filter(|t| truth[qi].contains(t)).count();
            codes += s.stats().codes;
            reranked += s.stats().reranked;
        }
        let secs = t.elapsed().as_secs_f64();
        let nq = a.queries as f64;
        println!(
            "| ivf nprobe={np} | {:.3} | {:.0} | {:.0} | {:.1} |",
            hits as f64 / (nq * a.k as f64),
            nq / secs,
            codes as f64 / nq,
            reranked as f64 / nq
        );
    }
    println!();
    println!("load average at end: {}", load());
}
