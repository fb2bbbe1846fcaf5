//! `amgettuple`: an iterator over the index in distance order that never runs dry early.
//!
//! A scan probes the `nprobe` lists whose centroids are nearest the query. For every code in them
//! it estimates the distance and, from the code's stored quantization error, a lower bound on the
//! true distance. Candidates are reranked with their stored full vector in lower-bound order, and
//! a result is returned once no unreranked candidate could beat it: within the probed lists the
//! order is exact, and only the rows that might be next are reranked. When the probed lists are
//! used up the scan probes the next `nprobe` lists, and so on until every list is done (or
//! `max_probes` lists), so a query whose WHERE clause drops rows still gets every row. Rows from a
//! later round can be nearer than rows of an earlier one (pgvector calls this relaxed order);
//! [`Iterative::Strict`] drops those instead, [`Iterative::Off`] stops after the first round, and
//! `max_scan_tuples` stops the rounds once that many codes were scanned (pgvector 0.8's
//! `iterative_scan` and `max_scan_tuples`).

use crate::meta::{self, Meta};
use crate::options::{Iterative, OptionsError, ScanOptions};
use crate::page::{self, CodeHead, Kind, ListEntry};
use crate::quantize;
use crate::relation::{INVALID_BLOCK, Relation};
use crate::{Metric, Tid};
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub tid: Tid,
    /// The exact distance in the metric's own units (`<->`, `<=>` or `<#>`); NaN for a zero
    /// query under cosine.
    pub distance: f32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ScanError {
    Dims { expected: usize, got: usize },
    NotFinite { index: usize },
    Options(OptionsError),
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScanError::Dims { expected, got } => {
                write!(f, "expected {expected} dimensions, not {got}")
            }
            ScanError::NotFinite { index } => {
                write!(f, "query value at position {index} is not finite")
            }
            ScanError::Options(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ScanError {}

/// Counters for EXPLAIN-like reporting and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanStats {
    pub rounds: u32,
    pub lists: u32,
    pub codes: u64,
    pub reranked: u64,
    /// Rows returned.
    pub returned: u64,
    /// Rows of a later round dropped in strict order (nearer than one already returned).
    pub dropped: u64,
    /// Candidates whose vector a concurrent VACUUM freed (or an insert reused) under the scan.
    pub skipped: u64,
}

#[derive(Clone, Copy)]
struct Candidate {
    bound: f32,
    tid: Tid,
    vec_block: u32,
    vec_slot: u16,
}

impl PartialEq for Candidate {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Candidate {
    fn cmp(&self, o: &Self) -> Ordering {
        self.bound.total_cmp(&o.bound).then(self.tid.cmp(&o.tid))
    }
}

#[derive(Clone, Copy)]
struct Ready {
    distance: f32,
    tid: Tid,
}

impl PartialEq for Ready {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Ready {}
impl PartialOrd for Ready {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Ready {
    fn cmp(&self, o: &Self) -> Ordering {
        self.distance
            .total_cmp(&o.distance)
            .then(self.tid.cmp(&o.tid))
    }
}

/// The candidates of the probed lists, handed out in lower-bound order. Most queries rerank a few
/// dozen of thousands of candidates, so they are not all ordered up front: the smallest `chunk`
/// are selected (in linear time), sorted and handed out, then the next (twice as many), and so on.
struct Pending {
    /// The current chunk, ascending; `next` is the first not handed out.
    sorted: Vec<Candidate>,
    next: usize,
    /// The rest, unordered; every one of them is at least the current chunk's last.
    rest: Vec<Candidate>,
    chunk: usize,
}

/// The first chunk: about what a LIMIT 10 query reranks.
const FIRST_CHUNK: usize = 64;

impl Pending {
    fn new() -> Pending {
        Pending {
            sorted: Vec::new(),
            next: 0,
            rest: Vec::new(),
            chunk: FIRST_CHUNK,
        }
    }

    /// Replaces the candidates (those left of the previous round are done with).
    fn reset(&mut self, candidates: Vec<Candidate>) {
        self.sorted.clear();
        self.next = 0;
        self.rest = candidates;
        self.chunk = FIRST_CHUNK;
    }

    fn peek(&mut self) -> Option<Candidate> {
        if self.next == self.sorted.len() {
            self.refill();
        }
        self.sorted.get(self.next).copied()
    }

    fn pop(&mut self) {
        self.next += 1;
    }

    fn refill(&mut self) {
        self.sorted.clear();
        self.next = 0;
        let n = self.rest.len();
        if n == 0 {
            return;
        }
        let k = self.chunk.min(n);
        if k < n {
            // The k smallest to the end (descending order around the pivot at n - k).
            self.rest.select_nth_unstable_by(n - k, |a, b| b.cmp(a));
        }
        self.sorted.extend(self.rest.drain(n - k..));
        self.sorted.sort_unstable();
        self.chunk = self.chunk.saturating_mul(2);
    }
}

/// A scan's state. It holds no page: the extension keeps it in the scan descriptor between
/// `amgettuple` calls and passes the relation to each [`Scan::next`].
pub struct Scan {
    meta: Meta,
    query: Vec<f32>,
    query_norm: f32,
    query_sum: f32,
    /// A zero query under cosine: every distance is NaN, rows come back in list order.
    nan: bool,
    /// Lists nearest first: (centroid distance, list). Each list's record is read when it is
    /// probed.
    order: Vec<(f32, u32)>,
    next_list: usize,
    limit: usize,
    nprobe: usize,
    iterative: Iterative,
    max_scan_tuples: u64,
    /// The distance of the last row returned (strict order).
    last: Option<f32>,
    pending: Pending,
    ready: BinaryHeap<Reverse<Ready>>,
    stats: ScanStats,
    residual: Vec<i16>,
    estimates: Vec<f32>,
    /// Blocks the relation had when last asked: a list's page chain longer than this loops
    /// (asked again before saying so, since inserts may have added pages since).
    known_blocks: u32,
}

impl Scan {
    pub fn new<R: Relation>(rel: &R, query: &[f32], opts: ScanOptions) -> Result<Scan, ScanError> {
        Scan::with_centroids(rel, meta::read_meta(rel), query, opts, None)
    }

    /// As [`Scan::new`], with the meta page already read and the index's centroids at hand
    /// ([`meta::read_centroids`], `lists * dims` values): the lists are ordered without reading
    /// the directory, and only the probed lists' records are read. Centroids of another shape are
    /// not used.
    pub fn with_centroids<R: Relation>(
        rel: &R,
        meta: Meta,
        query: &[f32],
        opts: ScanOptions,
        centroids: Option<&[f32]>,
    ) -> Result<Scan, ScanError> {
        opts.validate().map_err(ScanError::Options)?;
        if query.len() != meta.dims {
            return Err(ScanError::Dims {
                expected: meta.dims,
                got: query.len(),
            });
        }
        if let Some(index) = query.iter().position(|x| !x.is_finite()) {
            return Err(ScanError::NotFinite { index });
        }
        let mut q = query.to_vec();
        let nan = !meta.metric.prepare(&mut q);
        let key = |c: &[f32]| match meta.metric {
            Metric::L2 | Metric::Cosine => synthsearch_vector::l2_squared(&q, c),
            Metric::InnerProduct => -synthsearch_vector::dot(&q, c),
        };
        let mut order = Vec::with_capacity(meta.lists as usize);
        match centroids.filter(|c| c.len() == meta.lists as usize * meta.dims && meta.dims > 0) {
            Some(all) => {
                for (list, c) in all.chunks_exact(meta.dims).enumerate() {
                    order.push((key(c), list as u32));
                }
            }
            None => {
                for d in 0..meta.dir_pages {
                    let blk = meta.dir_start + d;
                    let p = rel.read(blk);
                    page::expect(&p, blk, Kind::Directory);
                    let first = d * meta.per_dir_page;
                    for i in 0..meta.per_dir_page.min(meta.lists - first) {
                        let off = page::record(i as usize, page::dir_stride(meta.dims));
                        let c = page::get_f32s(&p, off + page::CENTROID, meta.dims);
                        order.push((key(&c), first + i));
                    }
                }
            }
        }
        order.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let limit = if opts.max_probes == 0 {
            order.len()
        } else {
            (opts.max_probes as usize).min(order.len())
        };
        Ok(Scan {
            query_norm: synthsearch_vector::norm(&q) as f32,
            query_sum: q.iter().sum(),
            residual: vec![0i16; meta.dims],
            meta,
            query: q,
            nan,
            order,
            next_list: 0,
            limit,
            nprobe: opts.nprobe as usize,
            iterative: opts.iterative,
            max_scan_tuples: opts.max_scan_tuples,
            last: None,
            pending: Pending::new(),
            ready: BinaryHeap::new(),
            stats: ScanStats::default(),
            estimates: Vec::new(),
            known_blocks: rel.len(),
        })
    }

    pub fn stats(&self) -> ScanStats {
        self.stats
    }

    /// The next row, nearest first within the probed lists; None when every list allowed is done.
    pub fn next<R: Relation>(&mut self, rel: &R) -> Option<Hit> {
        loop {
            while let Some(c) = self.pending.peek() {
                if let Some(Reverse(r)) = self.ready.peek()
                    && r.distance <= c.bound
                {
                    break;
                }
                self.pending.pop();
                if let Some(distance) = self.rerank(rel, &c) {
                    self.ready.push(Reverse(Ready {
                        distance,
                        tid: c.tid,
                    }));
                }
            }
            if let Some(Reverse(r)) = self.ready.pop() {
                if self.iterative == Iterative::Strict
                    && !self.nan
                    && self.last.is_some_and(|last| r.distance < last)
                {
                    self.stats.dropped += 1;
                    continue;
                }
                self.last = Some(r.distance);
                self.stats.returned += 1;
                let distance = if self.nan { f32::NAN } else { r.distance };
                return Some(Hit {
                    tid: r.tid,
                    distance,
                });
            }
            if !self.probe_round(rel) {
                return None;
            }
        }
    }

    /// An iterator over the rest of the scan.
    pub fn iter<'a, R: Relation>(&'a mut self, rel: &'a R) -> impl Iterator<Item = Hit> + 'a {
        std::iter::from_fn(move || self.next(rel))
    }

    fn rerank<R: Relation>(&mut self, rel: &R, c: &Candidate) -> Option<f32> {
        self.stats.reranked += 1;
        let p = rel.read(c.vec_block);
        let h = page::expect(&p, c.vec_block, Kind::Vectors);
        let stride = page::vec_stride(self.meta.dims);
        if c.vec_slot >= h.count {
            panic!(
                "data corruption: code points at slot {} of block {} which has {}",
                c.vec_slot, c.vec_block, h.count
            );
        }
        let off = page::record(c.vec_slot as usize, stride);
        // The code was read before a VACUUM removed it: the slot is dead, or already reused by
        // another row. Its row is dead to every snapshot (VACUUM removed it), so it is skipped.
        // (synth_index_check, under its locks, finds a code and vector that truly disagree.)
        if page::vector_tid(&p, off) != c.tid || page::vector_flags(&p, off) & page::VEC_DEAD != 0 {
            self.stats.skipped += 1;
            return None;
        }
        let x = page::get_f32s(&p, off + page::VALUES, self.meta.dims);
        Some(self.meta.metric.distance(&self.query, &x))
    }

    /// Reads the codes of the next `nprobe` lists into the candidate heap. False when none are left.
    fn probe_round<R: Relation>(&mut self, rel: &R) -> bool {
        if self.next_list >= self.limit {
            return false;
        }
        if self.stats.rounds > 0
            && (self.iterative == Iterative::Off
                || (self.max_scan_tuples > 0 && self.stats.codes >= self.max_scan_tuples))
        {
            return false;
        }
        let end = (self.next_list + self.nprobe).min(self.limit);
        let mut cands = Vec::new();
        for i in self.next_list..end {
            let (_, list) = self.order[i];
            self.probe_list(rel, list, &mut cands);
        }
        self.next_list = end;
        self.stats.rounds += 1;
        self.pending.reset(cands);
        true
    }

    fn probe_list<R: Relation>(&mut self, rel: &R, list: u32, out: &mut Vec<Candidate>) {
        self.stats.lists += 1;
        let dims = self.meta.dims;
        let metric = self.meta.metric;
        // The list's record, and the query in this list's code units (L2, cosine) and how far
        // rounding moved it, or q·centroid (inner product).
        let (entry, base, slack) = {
            let (blk, off) = self.meta.entry_at(list);
            let p = rel.read(blk);
            page::expect(&p, blk, Kind::Directory);
            let entry = ListEntry::read(&p, off);
            let (lo, step) = (entry.lo, entry.step);
            let c = page::get_f32s(&p, off + page::CENTROID, dims);
            match metric {
                Metric::L2 | Metric::Cosine => {
                    let inv = 1.0 / step;
                    let mut moved = 0.0f32;
                    for ((r, &q), &cv) in self.residual.iter_mut().zip(&self.query).zip(c.iter()) {
                        let x = ((q - cv - lo) * inv)
                            .clamp(quantize::QUERY_CODE_MIN, quantize::QUERY_CODE_MAX);
                        let k = x.round();
                        moved += (x - k) * (x - k);
                        *r = k as i16;
                    }
                    (entry, 0.0, moved.sqrt() * (1.0 + 1e-4) + 1e-3)
                }
                Metric::InnerProduct => (
                    entry,
                    synthsearch_vector::dot(&self.query, &c) + lo * self.query_sum,
                    0.0,
                ),
            }
        };
        let step = entry.step;
        let stride = page::code_stride(dims);
        let mut blk = entry.code_head;
        let mut hops = 0u32;
        while blk != INVALID_BLOCK {
            let p = rel.read(blk);
            let h = page::expect(&p, blk, Kind::Codes);
            let n = h.count as usize;
            if n > page::capacity(stride) {
                panic!("data corruption: code page {blk} claims {n} records");
            }
            self.estimates.resize(n, 0.0);
            let first = page::HEADER + page::CODE;
            match metric {
                Metric::L2 | Metric::Cosine => quantize::l2_codes_i16(
                    &self.residual,
                    &p,
                    first,
                    stride,
                    n,
                    &mut self.estimates,
                ),
                Metric::InnerProduct => {
                    quantize::dot_codes(&self.query, &p, first, stride, n, &mut self.estimates)
                }
            }
            for (r, &e) in self.estimates[..n].iter().enumerate() {
                let head = CodeHead::read(&p, page::record(r, stride));
                let bound = match metric {
                    Metric::L2 => {
                        (((e.sqrt() - slack) * step) * (1.0 - 1e-5) - head.error).max(0.0)
                    }
                    Metric::Cosine => {
                        let d = (((e.sqrt() - slack) * step) * (1.0 - 1e-5) - head.error).max(0.0);
                        0.5 * d * d
                    }
                    Metric::InnerProduct => {
                        let est = -(base + step * e);
                        est - est.abs() * 1e-5 - self.query_norm * head.error
                    }
                };
                out.push(Candidate {
                    bound,
                    tid: head.tid,
                    vec_block: head.vec_block,
                    vec_slot: head.vec_slot,
                });
            }
            self.stats.codes += n as u64;
            blk = h.next;
            hops += 1;
            if hops > self.known_blocks {
                self.known_blocks = rel.len();
                if hops > self.known_blocks {
                    panic!("data corruption: code chain of list {list} loops");
                }
            }
        }
    }
}

/// What `amcostestimate` needs: the share of the index a scan with `nprobe` reads first.
pub fn scan_fraction(lists: u32, nprobe: u32) -> f64 {
    (nprobe as f64 / lists.max(1) as f64).min(1.0)
}
