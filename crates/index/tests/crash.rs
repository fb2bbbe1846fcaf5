//! Crash soundness: every prefix of the WAL records that inserts, VACUUM and inserts into freed
//! slots write leaves an index that synth_index_check accepts and a scan can read.
//!
//! A relation that keeps, as PostgreSQL's WAL would, one record per write guard outside
//! [`Relation::atomic`] and one per `atomic` call (the images of the pages it wrote). Replaying
//! the first k records over the built index is the state a crash after record k recovers to.

use std::cell::RefCell;
use std::collections::HashSet;
use std::ops::{ControlFlow, Deref, DerefMut};
use synthsearch_index::options::BuildOptions;
use synthsearch_index::relation::{MemRead, MemWrite};
use synthsearch_index::testdata::Mixture;
use synthsearch_index::{
    MemRelation, Metric, Relation, Scan, ScanOptions, Tid, build, bulk_delete, check, insert,
};

type Record = Vec<(u32, Vec<u8>)>;

struct Recorder {
    inner: MemRelation,
    log: RefCell<Vec<Record>>,
    group: RefCell<Option<Record>>,
    /// false: every guard is its own record, as if `atomic` did nothing.
    grouping: bool,
}

struct RecWrite<'a> {
    guard: MemWrite,
    blkno: u32,
    rec: &'a Recorder,
}

impl Deref for RecWrite<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.guard
    }
}
impl DerefMut for RecWrite<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.guard
    }
}
impl Drop for RecWrite<'_> {
    fn drop(&mut self) {
        let image = self.guard.to_vec();
        let mut group = self.rec.group.borrow_mut();
        match group.as_mut() {
            Some(g) => match g.iter_mut().find(|(b, _)| *b == self.blkno) {
                Some(entry) => entry.1 = image,
                None => g.push((self.blkno, image)),
            },
            None => self.rec.log.borrow_mut().push(vec![(self.blkno, image)]),
        }
    }
}

impl Relation for Recorder {
    type ReadGuard<'a> = MemRead;
    type WriteGuard<'a> = RecWrite<'a>;

    fn read(&self, blkno: u32) -> MemRead {
        self.inner.read(blkno)
    }
    fn write(&self, blkno: u32) -> RecWrite<'_> {
        RecWrite {
            guard: self.inner.write(blkno),
            blkno,
            rec: self,
        }
    }
    fn extend(&self) -> (u32, RecWrite<'_>) {
        let (blkno, guard) = self.inner.extend();
        (
            blkno,
            RecWrite {
                guard,
                blkno,
                rec: self,
            },
        )
    }
    fn len(&self) -> u32 {
        self.inner.len()
    }
    fn atomic<T>(&self, f: impl FnOnce() -> T) -> T {
        if !self.grouping || self.group.borrow().is_some() {
            return f();
        }
        *self.group.borrow_mut() = Some(Vec::new());
        let r = f();
        let g = self.group.borrow_mut().take().expect("group");
        if !g.is_empty() {
            self.log.borrow_mut().push(g);
        }
        r
    }
}

const DIMS: usize = 8;

fn rows(n: usize, seed: u64, first_block: u32) -> Vec<(Tid, Vec<f32>)> {
    let mix = Mixture::new(DIMS, 6, 0.5, 3);
    (0..n)
        .map(|i| {
            (
                Tid::new(first_block + i as u32 / 20, (i % 20 + 1) as u16),
                mix.point(seed, i as u64),
            )
        })
        .collect()
}

fn pages(rel: &MemRelation) -> Vec<Vec<u8>> {
    (0..rel.len()).map(|b| rel.read(b).to_vec()).collect()
}

/// The index after the first `k` records over `base`.
fn replay(base: &[Vec<u8>], log: &[Record]) -> MemRelation {
    let rel = MemRelation::new();
    for p in base {
        rel.extend().1.copy_from_slice(p);
    }
    for record in log {
        for (blk, image) in record {
            // A record may touch a page past the end (the relation was extended before it).
            while rel.len() <= *blk {
                drop(rel.extend());
            }
            rel.write(*blk).copy_from_slice(image);
        }
    }
    rel
}

/// Inserts, a VACUUM, inserts into the freed slots, a second VACUUM and more inserts; returns the
/// built pages and the records.
fn workload(grouping: bool) -> (Vec<Vec<u8>>, Vec<Record>) {
    let data = rows(400, 1, 0);
    let rec = Recorder {
        inner: MemRelation::new(),
        log: RefCell::new(Vec::new()),
        group: RefCell::new(None),
        grouping,
    };
    let mut opts = BuildOptions::new(DIMS, Metric::L2);
    opts.lists = 4;
    opts.threads = 1;
    let mut src: &[(Tid, Vec<f32>)] = &data;
    build(&rec.inner, opts, data.len() as u64, &mut src, &mut |_| {
        ControlFlow::Continue(())
    })
    .expect("build");
    let base = pages(&rec.inner);
    let no_progress = &mut |_: u32, _: u32| ControlFlow::Continue(());
    for (t, v) in rows(150, 2, 1000) {
        insert(&rec, t, &v).unwrap();
    }
    let gone: HashSet<Tid> = data.iter().step_by(3).map(|(t, _)| *t).collect();
    bulk_delete(&rec, &mut |t| gone.contains(&t), no_progress).unwrap();
    for (t, v) in rows(160, 3, 2000) {
        insert(&rec, t, &v).unwrap();
    }
    bulk_delete(
        &rec,
        &mut |t| t.block >= 1000 && t.block < 1004,
        no_progress,
    )
    .unwrap();
    for (t, v) in rows(60, 4, 3000) {
        insert(&rec, t, &v).unwrap();
    }
    (base, rec.log.into_inner())
}

#[test]
fn every_prefix_of_the_records_is_a_sound_index() {
    let (base, log) = workload(true);
    assert!(log.len() > 300, "only {} records", log.len());
    assert!(
        log.iter()
            .all(|r| r.len() <= synthsearch_index::relation::MAX_ATOMIC_PAGES)
    );
    let q = rows(1, 9, 0)[0].1.clone();
    let mut orphans = 0;
    for k in 0..=log.len() {
        let rel = replay(&base, &log[..k]);
        let report =
            check(&rel, None).unwrap_or_else(|e| panic!("after {k} of {} records: {e}", log.len()));
        orphans += report.orphan_vectors;
        // And a scan over every list reads it.
        let mut s = Scan::new(
            &rel,
            &q,
            ScanOptions {
                nprobe: 4,
                ..ScanOptions::default()
            },
        )
        .unwrap();
        assert_eq!(
            s.iter(&rel).count() as u64,
            report.live,
            "after {k} records"
        );
    }
    // A crash between a code page's record and its vectors' leaves orphans; some prefixes do.
    assert!(orphans > 0);
}

#[test]
fn without_one_record_per_change_a_prefix_is_not_sound() {
    // The same work with every page its own record (what inserts did before they were atomic):
    // some prefix leaves a list's counts out of step with its pages, which the check reports.
    let (base, log) = workload(false);
    let bad = (0..=log.len()).find(|&k| check(&replay(&base, &log[..k]), None).is_err());
    assert!(
        bad.is_some(),
        "no prefix of {} records was caught",
        log.len()
    );
}
