//! `ambuild`, as steps the extension drives: sample rows, train k-means one step at a time, then
//! stream every row into its list. Memory stays within the budget whatever the table size: the
//! sample is a bounded reservoir and rows are assigned and written a batch at a time.

use crate::insert::{self, Encoded, InsertError};
use crate::kmeans::{self, KMeans};
use crate::meta::{META_BLOCK, Meta};
use crate::options::{self, BuildOptions, OptionsError};
use crate::page::{self, Kind, ListEntry};
use crate::quantize::Quantizer;
use crate::relation::{PAGE_AREA, Relation};
use crate::{Metric, Tid};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

/// Most rows assigned and written together; a bigger batch costs memory and saves page visits.
pub const BATCH_ROWS: usize = 16384;
/// Fewest rows in a batch, however small the budget.
pub const MIN_BATCH_ROWS: usize = 64;

/// Build phases, for `pg_stat_progress_create_index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Sampling,
    Training,
    Loading,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub phase: Phase,
    pub done: u64,
    pub total: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum BuildError {
    Options(OptionsError),
    Vector(InsertError),
    /// The progress callback asked to stop.
    Cancelled,
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Options(e) => e.fmt(f),
            BuildError::Vector(e) => e.fmt(f),
            BuildError::Cancelled => write!(f, "index build cancelled"),
        }
    }
}

impl std::error::Error for BuildError {}

impl From<OptionsError> for BuildError {
    fn from(e: OptionsError) -> BuildError {
        BuildError::Options(e)
    }
}
impl From<InsertError> for BuildError {
    fn from(e: InsertError) -> BuildError {
        BuildError::Vector(e)
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildStats {
    pub lists: u32,
    pub sampled: u64,
    pub rows: u64,
    /// Rows not indexed: zero vectors under cosine.
    pub skipped: u64,
    pub pages: u32,
    pub train_time: Duration,
    pub load_time: Duration,
}

enum State {
    Sampling,
    Training(Box<KMeans>),
    Loading(Box<Loader>),
    Finished,
}

struct Loader {
    meta: Meta,
    entries: Vec<ListEntry>,
    centroids: Vec<f32>,
    batch_tids: Vec<Tid>,
    batch_values: Vec<f32>,
}

pub struct Build {
    opts: BuildOptions,
    lists: u32,
    reservoir: Vec<f32>,
    capacity: usize,
    batch: usize,
    seen: u64,
    rng: ChaCha8Rng,
    pool: Option<rayon::ThreadPool>,
    state: State,
    stats: BuildStats,
    started: Instant,
}

/// Bytes a batch row takes: the vector, its code, tid and assignment.
fn batch_row_bytes(dims: usize) -> usize {
    5 * dims + 32
}

/// A batch of at most a quarter of the budget.
fn batch_rows(dims: usize, memory: usize) -> usize {
    (memory / 4 / batch_row_bytes(dims)).clamp(MIN_BATCH_ROWS, BATCH_ROWS)
}

/// Bytes the build holds besides the sample: centroids, directory copy and one batch.
fn fixed_memory(dims: usize, lists: u32, batch: usize) -> usize {
    lists as usize * (page::dir_stride(dims) + 4 * dims)
        + batch * batch_row_bytes(dims)
        + 4 * PAGE_AREA
}

impl Build {
    /// `expected_rows` (reltuples) sizes the sample when `lists` is automatic.
    pub fn new(opts: BuildOptions, expected_rows: u64) -> Result<Build, BuildError> {
        opts.validate()?;
        let lists = if opts.lists == 0 {
            options::auto_lists(expected_rows)
        } else {
            opts.lists
        };
        let batch = batch_rows(opts.dims, opts.memory);
        let fixed = fixed_memory(opts.dims, lists, batch);
        let row = 4 * opts.dims;
        let wanted = lists as usize * opts.sample_per_list as usize;
        let need_min = fixed + row * lists as usize;
        if opts.memory < need_min {
            return Err(OptionsError::MemoryTooSmall {
                needed: need_min,
                given: opts.memory,
            }
            .into());
        }
        let capacity = wanted.min((opts.memory - fixed) / row).max(lists as usize);
        let pool = (opts.threads > 0).then(|| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(opts.threads)
                .build()
                .expect("could not start build threads")
        });
        Ok(Build {
            rng: ChaCha8Rng::seed_from_u64(opts.seed),
            opts,
            lists,
            reservoir: Vec::with_capacity(capacity.min(1 << 20) * row / 4),
            capacity,
            batch,
            seen: 0,
            pool,
            state: State::Sampling,
            stats: BuildStats::default(),
            started: Instant::now(),
        })
    }

    fn install<T: Send>(pool: &Option<rayon::ThreadPool>, f: impl FnOnce() -> T + Send) -> T {
        match pool {
            Some(p) => p.install(f),
            None => f(),
        }
    }

    pub fn lists(&self) -> u32 {
        self.lists
    }

    /// Rows the sampling pass has seen.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Offers a row to the training sample (reservoir sampling, Vitter's algorithm R).
    pub fn sample(&mut self, vector: &[f32]) -> Result<(), BuildError> {
        assert!(
            matches!(self.state, State::Sampling),
            "sample() after training started"
        );
        let Some(v) = insert::prepare(self.opts.metric, self.opts.dims, vector)? else {
            return Ok(());
        };
        self.seen += 1;
        let d = self.opts.dims;
        if self.reservoir.len() < self.capacity * d {
            self.reservoir.extend_from_slice(&v);
        } else {
            let j = self.rng.random_range(0..self.seen);
            if (j as usize) < self.capacity {
                self.reservoir[j as usize * d..(j as usize + 1) * d].copy_from_slice(&v);
            }
        }
        Ok(())
    }

    /// One k-means step. Returns (done, total) steps; done == total when training is over.
    pub fn train_step(&mut self) -> (u64, u64) {
        if matches!(self.state, State::Sampling) {
            self.stats.sampled = (self.reservoir.len() / self.opts.dims) as u64;
            if self.opts.lists == 0 && self.seen > 0 {
                // The sampling pass counted the rows: size the lists from the real count.
                // Keep at least the minimum sample per list.
                let most = (self.stats.sampled / options::MIN_SAMPLE_PER_LIST as u64).max(1) as u32;
                self.lists = options::auto_lists(self.seen).min(most);
            }
            let km = KMeans::new(
                std::mem::take(&mut self.reservoir),
                self.opts.dims,
                self.lists as usize,
                self.opts.kmeans_iterations,
                self.opts.metric == Metric::Cosine,
                self.opts.seed,
            );
            self.state = State::Training(Box::new(km));
        }
        match &mut self.state {
            State::Training(km) => {
                let total = km.total_steps() as u64;
                if km.is_done() {
                    return (total, total);
                }
                let pool = &self.pool;
                let step = Self::install(pool, || km.step());
                let done = match step {
                    kmeans::Step::Seeding { done, .. } => done as u64,
                    kmeans::Step::Iteration { done, .. } => self.lists as u64 + done as u64,
                    kmeans::Step::Done => total,
                };
                (
                    if km.is_done() {
                        total
                    } else {
                        done.min(total - 1)
                    },
                    total,
                )
            }
            _ => panic!("train_step() after loading started"),
        }
    }

    /// Once the sampling pass is over and k-means++ has seeded the lists, hands the Lloyd
    /// iterations to `f` (see [`KMeans::lloyd_with`]): the extension runs them on a GPU. False
    /// when it is not that time or `f` declined; [`Build::train_step`] goes on as before then.
    pub fn lloyd_with(
        &mut self,
        f: impl FnOnce(&[f32], &mut [f32], usize, u32, bool) -> bool,
    ) -> bool {
        match &mut self.state {
            State::Training(km) if km.seeded() => km.lloyd_with(f),
            _ => false,
        }
    }

    /// Whether k-means++ has seeded the lists (the Lloyd iterations come next).
    pub fn seeded(&self) -> bool {
        matches!(&self.state, State::Training(km) if km.seeded())
    }

    /// Ends training, fits each list's quantizer and writes the meta page and directory.
    /// `rel` must be empty.
    pub fn begin_load<R: Relation>(&mut self, rel: &R) {
        while !matches!(self.state, State::Training(ref km) if km.is_done()) {
            self.train_step();
        }
        let State::Training(km) = std::mem::replace(&mut self.state, State::Finished) else {
            unreachable!()
        };
        self.stats.train_time = self.started.elapsed();
        let dims = self.opts.dims;
        let centroids = km.centroids().to_vec();
        let quantizers =
            Self::install(&self.pool, || fit_quantizers(km.sample(), &centroids, dims));
        drop(km);
        assert!(rel.is_empty(), "begin_load() on a relation that has pages");
        let mut meta = Meta::new(dims, self.opts.metric, self.lists);
        meta.build_rows = self.seen;
        {
            let (blk, mut p) = rel.extend();
            assert_eq!(blk, META_BLOCK);
            meta.write(&mut p);
        }
        let entries: Vec<ListEntry> = quantizers
            .iter()
            .map(|q| ListEntry {
                lo: q.lo,
                step: q.step,
                ..ListEntry::empty()
            })
            .collect();
        for d in 0..meta.dir_pages {
            let (blk, mut p) = rel.extend();
            assert_eq!(blk, meta.dir_start + d);
            page::init(&mut p, Kind::Directory, crate::relation::INVALID_BLOCK);
            let first = d * meta.per_dir_page;
            let n = meta.per_dir_page.min(meta.lists - first);
            for i in 0..n {
                let list = (first + i) as usize;
                let off = page::record(i as usize, page::dir_stride(dims));
                entries[list].write(&mut p, off);
                page::put_f32s(
                    &mut p,
                    off + page::CENTROID,
                    &centroids[list * dims..(list + 1) * dims],
                );
            }
            page::set_count(&mut p, n as u16);
        }
        self.state = State::Loading(Box::new(Loader {
            meta,
            entries,
            centroids,
            batch_tids: Vec::with_capacity(self.batch),
            batch_values: Vec::with_capacity(self.batch * dims),
        }));
    }

    /// Adds a row to the index. Returns false when it is not indexed (zero vector under cosine).
    pub fn load<R: Relation>(
        &mut self,
        rel: &R,
        tid: Tid,
        vector: &[f32],
    ) -> Result<bool, BuildError> {
        let State::Loading(ld) = &mut self.state else {
            panic!("load() before begin_load()")
        };
        let Some(v) = insert::prepare(self.opts.metric, self.opts.dims, vector)? else {
            self.stats.skipped += 1;
            return Ok(false);
        };
        ld.batch_tids.push(tid);
        ld.batch_values.extend_from_slice(&v);
        self.stats.rows += 1;
        if ld.batch_tids.len() >= self.batch {
            ld.flush(&self.pool, rel);
        }
        Ok(true)
    }

    /// Writes what is buffered and the directory's final state.
    pub fn finish<R: Relation>(mut self, rel: &R) -> BuildStats {
        if !matches!(self.state, State::Loading(_)) {
            self.begin_load(rel);
        }
        let State::Loading(mut ld) = std::mem::replace(&mut self.state, State::Finished) else {
            unreachable!()
        };
        ld.flush(&self.pool, rel);
        let meta = ld.meta;
        for (list, e) in ld.entries.iter().enumerate() {
            let (blk, off) = meta.entry_at(list as u32);
            let mut p = rel.write(blk);
            e.write(&mut p, off);
        }
        self.stats.lists = self.lists;
        self.stats.pages = rel.len();
        self.stats.load_time = self.started.elapsed() - self.stats.train_time;
        self.stats
    }
}

impl Loader {
    /// Assigns and encodes the batch in parallel, then writes it list by list.
    /// The relation need not be `Sync` (PostgreSQL's is not): only the encoding runs on threads.
    fn flush<R: Relation>(&mut self, pool: &Option<rayon::ThreadPool>, rel: &R) {
        let dims = self.meta.dims;
        let n = self.batch_tids.len();
        if n == 0 {
            return;
        }
        let centroids = &self.centroids;
        let entries = &self.entries;
        let values = &self.batch_values;
        let mut codes = vec![0u8; n * dims];
        let codes_mut = &mut codes;
        let assigned: Vec<(u32, f32)> = Build::install(pool, move || {
            values
                .par_chunks_exact(dims)
                .zip(codes_mut.par_chunks_exact_mut(dims))
                .map(|(x, code)| {
                    let (list, _) = kmeans::nearest(centroids, dims, x);
                    let e = &entries[list as usize];
                    let c = &centroids[list as usize * dims..(list as usize + 1) * dims];
                    (
                        list,
                        Quantizer {
                            lo: e.lo,
                            step: e.step,
                        }
                        .encode(x, c, code),
                    )
                })
                .collect()
        });
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| assigned[i].0);
        let mut items = Vec::new();
        let mut start = 0;
        while start < n {
            let list = assigned[order[start]].0;
            let mut end = start;
            items.clear();
            while end < n && assigned[order[end]].0 == list {
                let i = order[end];
                items.push(Encoded {
                    tid: self.batch_tids[i],
                    values: &self.batch_values[i * dims..(i + 1) * dims],
                    code: &codes[i * dims..(i + 1) * dims],
                    error: assigned[i].1,
                });
                end += 1;
            }
            insert::append(rel, dims, &mut self.entries[list as usize], &items);
            start = end;
        }
        self.batch_tids.clear();
        self.batch_values.clear();
    }
}

/// Per list, the range of the sample's residuals; lists with too few sample rows take the range
/// of all residuals.
fn fit_quantizers(sample: &[f32], centroids: &[f32], dims: usize) -> Vec<Quantizer> {
    let k = centroids.len() / dims;
    let ranges: Vec<(u32, f32, f32)> = sample
        .par_chunks_exact(dims)
        .map(|x| {
            let (list, _) = kmeans::nearest(centroids, dims, x);
            let c = &centroids[list as usize * dims..(list as usize + 1) * dims];
            let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
            for (a, b) in x.iter().zip(c) {
                lo = lo.min(a - b);
                hi = hi.max(a - b);
            }
            (list, lo, hi)
        })
        .collect();
    let mut per = vec![(0u32, f32::INFINITY, f32::NEG_INFINITY); k];
    let (mut glo, mut ghi) = (f32::INFINITY, f32::NEG_INFINITY);
    for &(l, lo, hi) in &ranges {
        let p = &mut per[l as usize];
        p.0 += 1;
        p.1 = p.1.min(lo);
        p.2 = p.2.max(hi);
        glo = glo.min(lo);
        ghi = ghi.max(hi);
    }
    per.iter()
        .map(|&(count, lo, hi)| {
            // A small sample underestimates the range; widen it a little. Clamped values stay
            // correct (their error is stored), they only cost reranks.
            let (lo, hi) = if count >= 8 { (lo, hi) } else { (glo, ghi) };
            let pad = 0.05 * (hi - lo);
            Quantizer::fit(lo - pad, hi + pad)
        })
        .collect()
}

/// Rows for a one-shot build: called once for the sample pass and once for the load pass, it
/// must hand the same rows to `f` each time.
pub trait Rows {
    fn scan(&mut self, f: &mut RowFn<'_>) -> Result<(), BuildError>;
}

/// What [`Rows::scan`] calls for each row.
pub type RowFn<'a> = dyn FnMut(Tid, &[f32]) -> Result<(), BuildError> + 'a;

/// Builds an index on an empty `rel` in one call, reporting progress; the callback returns
/// `ControlFlow::Break` to cancel.
pub fn build<R: Relation>(
    rel: &R,
    opts: BuildOptions,
    expected_rows: u64,
    rows: &mut dyn Rows,
    progress: &mut dyn FnMut(Progress) -> ControlFlow<()>,
) -> Result<BuildStats, BuildError> {
    let mut b = Build::new(opts, expected_rows)?;
    let mut check = |p: Progress| match progress(p) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(()) => Err(BuildError::Cancelled),
    };
    let mut n = 0u64;
    rows.scan(&mut |_, v| {
        b.sample(v)?;
        n += 1;
        if n.is_multiple_of(65536) {
            check(Progress {
                phase: Phase::Sampling,
                done: n,
                total: expected_rows.max(n),
            })?;
        }
        Ok(())
    })?;
    loop {
        let (done, total) = b.train_step();
        check(Progress {
            phase: Phase::Training,
            done,
            total,
        })?;
        if done == total {
            break;
        }
    }
    b.begin_load(rel);
    let total = b.seen();
    let mut n = 0u64;
    rows.scan(&mut |tid, v| {
        b.load(rel, tid, v)?;
        n += 1;
        if n.is_multiple_of(MIN_BATCH_ROWS as u64 * 64) {
            check(Progress {
                phase: Phase::Loading,
                done: n,
                total: total.max(n),
            })?;
        }
        Ok(())
    })?;
    let stats = b.finish(rel);
    check(Progress {
        phase: Phase::Loading,
        done: n,
        total: n,
    })?;
    Ok(stats)
}

/// Rows held in memory: (tid, vector) pairs.
impl Rows for &[(Tid, Vec<f32>)] {
    fn scan(&mut self, f: &mut RowFn<'_>) -> Result<(), BuildError> {
        for (tid, v) in self.iter() {
            f(*tid, v)?;
        }
        Ok(())
    }
}
