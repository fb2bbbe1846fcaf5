//! Seeded end-to-end tests of the index over in-memory pages.

use std::collections::HashSet;
use std::ops::ControlFlow;
use synthsearch_index::options::{BuildOptions, Iterative};
use synthsearch_index::testdata::Mixture;
use synthsearch_index::{
    BuildError, MemRelation, Metric, Relation, Scan, ScanOptions, Tid, build, bulk_delete, check,
    insert, page, read_meta, set_encoder_version,
};

const DIMS: usize = 24;

fn rows(n: usize, seed: u64) -> Vec<(Tid, Vec<f32>)> {
    let mix = Mixture::new(DIMS, 20, 0.4, 7);
    (0..n)
        .map(|i| {
            (
                Tid::new(i as u32 / 50, (i % 50 + 1) as u16),
                mix.point(seed, i as u64),
            )
        })
        .collect()
}

fn build_index(data: &[(Tid, Vec<f32>)], metric: Metric, lists: u32) -> MemRelation {
    let rel = MemRelation::new();
    let mut opts = BuildOptions::new(DIMS, metric);
    opts.lists = lists;
    opts.threads = 2;
    let mut src: &[(Tid, Vec<f32>)] = data;
    build(&rel, opts, data.len() as u64, &mut src, &mut |_| {
        ControlFlow::Continue(())
    })
    .expect("build");
    rel
}

fn exact(data: &[(Tid, Vec<f32>)], metric: Metric, q: &[f32], k: usize) -> Vec<Tid> {
    let mut qq = q.to_vec();
    metric.prepare(&mut qq);
    let mut all: Vec<(f32, Tid)> = data
        .iter()
        .filter_map(|(t, v)| {
            let mut x = v.clone();
            metric
                .prepare(&mut x)
                .then(|| (metric.distance(&qq, &x), *t))
        })
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    all.into_iter().take(k).map(|p| p.1).collect()
}

fn heap(data: &[(Tid, Vec<f32>)]) -> impl Iterator<Item = (Tid, Vec<f32>)> + '_ {
    data.iter().cloned()
}

#[test]
fn recall_against_exact_search() {
    let data = rows(4000, 1);
    let queries = rows(50, 99);
    for (metric, want) in [
        (Metric::L2, 0.95),
        (Metric::Cosine, 0.95),
        (Metric::InnerProduct, 0.85),
    ] {
        let rel = build_index(&data, metric, 40);
        check(&rel, Some(&mut heap(&data))).expect("fresh index is consistent");
        let mut hits = 0;
        for (_, q) in &queries {
            let truth = exact(&data, metric, q, 10);
            let mut s = Scan::new(
                &rel,
                q,
                ScanOptions {
                    nprobe: 8,
                    max_probes: 0,
                    ..ScanOptions::default()
                },
            )
            .unwrap();
            let got: Vec<Tid> = s.iter(&rel).take(10).map(|h| h.tid).collect();
            hits += got.iter().filter(|t| truth.contains(t)).count();
        }
        let recall = hits as f64 / (10 * queries.len()) as f64;
        assert!(recall >= want, "{metric:?}: recall@10 {recall} < {want}");
    }
}

#[test]
fn exhaustive_scan_returns_each_row_once_in_order() {
    let data = rows(3000, 2);
    for metric in [Metric::L2, Metric::Cosine, Metric::InnerProduct] {
        let rel = build_index(&data, metric, 30);
        let q = &rows(1, 5)[0].1;
        // All lists in one round: exact order over the whole index.
        let mut s = Scan::new(
            &rel,
            q,
            ScanOptions {
                nprobe: 30,
                max_probes: 0,
                ..ScanOptions::default()
            },
        )
        .unwrap();
        let hits: Vec<_> = s.iter(&rel).collect();
        assert_eq!(hits.len(), data.len());
        assert!(
            hits.windows(2).all(|w| w[0].distance <= w[1].distance),
            "{metric:?} not in order"
        );
        let tids: HashSet<Tid> = hits.iter().map(|h| h.tid).collect();
        assert_eq!(tids.len(), data.len());
        let truth = exact(&data, metric, q, 20);
        let got: Vec<Tid> = hits.iter().take(20).map(|h| h.tid).collect();
        assert_eq!(
            got, truth,
            "{metric:?}: exhaustive top-20 differs from brute force"
        );
        // One list at a time: the scan keeps going until every row came back exactly once.
        let mut s = Scan::new(
            &rel,
            q,
            ScanOptions {
                nprobe: 1,
                max_probes: 0,
                ..ScanOptions::default()
            },
        )
        .unwrap();
        let tids: Vec<Tid> = s.iter(&rel).map(|h| h.tid).collect();
        assert_eq!(tids.len(), data.len());
        assert_eq!(tids.iter().collect::<HashSet<_>>().len(), data.len());
        assert_eq!(s.stats().lists, 30);
        // max_probes stops early.
        let mut s = Scan::new(
            &rel,
            q,
            ScanOptions {
                nprobe: 2,
                max_probes: 3,
                ..ScanOptions::default()
            },
        )
        .unwrap();
        let n = s.iter(&rel).count();
        assert!(n > 0 && n < data.len());
        assert_eq!(s.stats().lists, 3);
    }
}

#[test]
fn inserts_after_build_are_found() {
    let mut data = rows(1500, 3);
    let rel = build_index(&data, Metric::L2, 12);
    let pages = rel.len();
    // Enough rows to fill head pages and add new ones.
    let extra: Vec<(Tid, Vec<f32>)> = rows(600, 4)
        .into_iter()
        .map(|(t, v)| (Tid::new(t.block + 10_000, t.offset), v))
        .collect();
    for (t, v) in &extra {
        assert!(insert(&rel, *t, v).unwrap());
    }
    assert!(rel.len() > pages);
    data.extend(extra.iter().cloned());
    let report = check(&rel, Some(&mut heap(&data))).expect("consistent after inserts");
    assert_eq!(report.live, data.len() as u64);
    for (t, v) in extra.iter().step_by(37) {
        let mut s = Scan::new(
            &rel,
            v,
            ScanOptions {
                nprobe: 1,
                max_probes: 0,
                ..ScanOptions::default()
            },
        )
        .unwrap();
        let h = s.next(&rel).unwrap();
        assert_eq!((h.tid, h.distance), (*t, 0.0));
    }
}

#[test]
fn build_on_empty_table_then_insert() {
    let rel = build_index(&[], Metric::Cosine, 0);
    assert_eq!(read_meta(&rel).lists, 1);
    let data = rows(300, 6);
    for (t, v) in &data {
        insert(&rel, *t, v).unwrap();
    }
    assert!(
        !insert(&rel, Tid::new(9999, 1), &[0.0; DIMS]).unwrap(),
        "zero vector is not indexed under cosine"
    );
    check(&rel, Some(&mut heap(&data))).unwrap();
    let mut s = Scan::new(&rel, &data[5].1, ScanOptions::default()).unwrap();
    assert_eq!(s.next(&rel).unwrap().tid, data[5].0);
}

#[test]
fn deleted_rows_vanish_and_check_passes() {
    let data = rows(2500, 7);
    let rel = build_index(&data, Metric::L2, 20);
    let gone = |t: Tid| (t.block + t.offset as u32).is_multiple_of(3);
    let stats = bulk_delete(
        &rel,
        &mut |t| gone(t),
        &mut |_, _| ControlFlow::Continue(()),
    )
    .unwrap();
    let kept: Vec<_> = data.iter().filter(|(t, _)| !gone(*t)).cloned().collect();
    assert_eq!(stats.removed as usize, data.len() - kept.len());
    assert_eq!(stats.remaining as usize, kept.len());
    let report = check(&rel, Some(&mut heap(&kept))).expect("consistent after vacuum");
    assert_eq!(report.dead_vectors as usize, data.len() - kept.len());
    assert_eq!(report.orphan_vectors, 0);
    let mut s = Scan::new(
        &rel,
        &data[0].1,
        ScanOptions {
            nprobe: 3,
            max_probes: 0,
            ..ScanOptions::default()
        },
    )
    .unwrap();
    let tids: Vec<Tid> = s.iter(&rel).map(|h| h.tid).collect();
    assert_eq!(tids.len(), kept.len());
    assert!(tids.iter().all(|t| !gone(*t)));
    // Inserts still work after compaction.
    assert!(insert(&rel, Tid::new(777, 1), &data[1].1).unwrap());
    check(&rel, None).unwrap();
}

#[test]
fn checker_finds_corruption() {
    let data = rows(800, 8);
    let fresh = || build_index(&data, Metric::L2, 8);
    let kind_of = |rel: &MemRelation, want: page::Kind| {
        (0..rel.len())
            .find(|&b| page::header(&rel.read(b)).kind == want as u16)
            .unwrap()
    };
    let rel = fresh();
    check(&rel, None).unwrap();

    let b = kind_of(&rel, page::Kind::Codes);
    page::put_u32(&mut rel.write(b), 0, 0xdead_beef);
    let e = check(&rel, None).unwrap_err();
    assert_eq!(e.block, Some(b), "{e}");
    assert!(e.message.contains("magic"), "{e}");

    let rel = fresh();
    let b = kind_of(&rel, page::Kind::Vectors);
    page::put_f32(
        &mut rel.write(b),
        page::record(0, page::vec_stride(DIMS)) + page::VALUES + 4,
        f32::NAN,
    );
    assert!(
        check(&rel, None)
            .unwrap_err()
            .message
            .contains("non-finite")
    );

    let rel = fresh();
    let b = kind_of(&rel, page::Kind::Vectors);
    page::put_f32(
        &mut rel.write(b),
        page::record(0, page::vec_stride(DIMS)) + page::VALUES,
        1e6,
    );
    assert!(check(&rel, None).unwrap_err().message.contains("bound"));

    let rel = fresh();
    page::put_u32(&mut rel.write(0), 16, 99_999);
    assert!(check(&rel, None).unwrap_err().message.contains("dims"));

    let rel = fresh();
    let mut fewer = data.clone();
    fewer.pop();
    assert!(
        check(&rel, Some(&mut heap(&fewer)))
            .unwrap_err()
            .message
            .contains("heap does not")
    );
    let mut changed = data.clone();
    changed[3].1[0] += 1.0;
    assert!(
        check(&rel, Some(&mut heap(&changed)))
            .unwrap_err()
            .message
            .contains("different vector")
    );
}

#[test]
fn bad_input_is_rejected() {
    let data = rows(500, 9);
    let rel = build_index(&data, Metric::L2, 5);
    assert!(
        Scan::new(&rel, &[1.0; 3], ScanOptions::default())
            .err()
            .unwrap()
            .to_string()
            .contains("expected 24 dimensions, not 3")
    );
    let mut nan = vec![0.0; DIMS];
    nan[2] = f32::NAN;
    assert!(Scan::new(&rel, &nan, ScanOptions::default()).is_err());
    assert!(
        Scan::new(
            &rel,
            &data[0].1,
            ScanOptions {
                nprobe: 0,
                ..ScanOptions::default()
            }
        )
        .is_err()
    );
    assert!(insert(&rel, Tid::new(1, 1), &[1.0; 5]).is_err());
    assert!(insert(&rel, Tid::new(1, 1), &nan).is_err());
    let mut o = BuildOptions::new(DIMS, Metric::L2);
    o.lists = 40_000;
    assert!(matches!(
        synthsearch_index::Build::new(o, 10),
        Err(BuildError::Options(_))
    ));
    let mut o = BuildOptions::new(5000, Metric::L2);
    o.lists = 10;
    assert!(synthsearch_index::Build::new(o, 10).is_err());
    let mut o = BuildOptions::new(DIMS, Metric::L2);
    o.memory = 2 << 20;
    o.lists = 30_000;
    let e = synthsearch_index::Build::new(o, 10)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("maintenance_work_mem"), "{e}");
}

#[test]
fn build_is_cancellable_and_reports_progress() {
    let data = rows(2000, 10);
    let rel = MemRelation::new();
    let mut phases = vec![];
    let mut src: &[(Tid, Vec<f32>)] = &data;
    let r = build(
        &rel,
        BuildOptions::new(DIMS, Metric::L2),
        2000,
        &mut src,
        &mut |p| {
            phases.push(p.phase);
            if p.phase == synthsearch_index::Phase::Training && p.done >= 5 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    );
    assert_eq!(r, Err(BuildError::Cancelled));
    assert!(phases.contains(&synthsearch_index::Phase::Training));
}

#[test]
fn small_memory_budget_still_builds() {
    let data = rows(3000, 11);
    let rel = MemRelation::new();
    let mut o = BuildOptions::new(DIMS, Metric::L2);
    o.lists = 10;
    o.memory = 2 << 20;
    let mut src: &[(Tid, Vec<f32>)] = &data;
    let stats = build(&rel, o, 3000, &mut src, &mut |_| ControlFlow::Continue(())).unwrap();
    assert_eq!(stats.rows, 3000);
    check(&rel, Some(&mut heap(&data))).unwrap();
}

#[test]
fn encoder_version_is_remembered() {
    let rel = build_index(&rows(100, 12), Metric::L2, 2);
    assert_eq!(read_meta(&rel).encoder_version, 0);
    set_encoder_version(&rel, 0x1234_5678_9abc);
    let m = read_meta(&rel);
    assert_eq!(
        (m.encoder_version, m.dims, m.metric, m.lists),
        (0x1234_5678_9abc, DIMS, Metric::L2, 2)
    );
    check(&rel, None).unwrap();
}

/// The page layout is versioned: the header of every page is magic, then version 1 (the layout of
/// every release so far), and a meta page of another version is refused by name, not misread.
#[test]
fn page_format_is_versioned() {
    let rel = build_index(&rows(100, 13), Metric::L2, 2);
    {
        let p = rel.read(0);
        assert_eq!(&p[0..4], &0x5359_4958u32.to_le_bytes());
        assert_eq!(&p[4..6], &1u16.to_le_bytes());
        assert_eq!(
            page::VERSION,
            1,
            "a new page layout needs a new version and a REINDEX note"
        );
    }
    {
        let mut p = rel.write(0);
        p[4..6].copy_from_slice(&2u16.to_le_bytes());
    }
    let err = synthsearch_index::Meta::parse(&rel.read(0)).unwrap_err();
    assert!(err.contains("index version 2 is not supported"), "{err}");
    assert!(check(&rel, None).is_err());
}

#[test]
fn iterative_modes_and_the_scan_cap() {
    let data = rows(3000, 7);
    let rel = build_index(&data, Metric::L2, 30);
    let q = &rows(1, 11)[0].1;
    let scan = |iterative, max_scan_tuples| {
        let mut s = Scan::new(
            &rel,
            q,
            ScanOptions {
                nprobe: 2,
                iterative,
                max_scan_tuples,
                ..ScanOptions::default()
            },
        )
        .unwrap();
        let hits: Vec<_> = s.iter(&rel).collect();
        (hits, s.stats())
    };
    // Relaxed (the default): every row, once; some later row is nearer than an earlier one.
    let (relaxed, st) = scan(Iterative::Relaxed, 0);
    assert_eq!(relaxed.len(), data.len());
    assert_eq!(st.rounds, 15);
    assert!(
        relaxed.windows(2).any(|w| w[0].distance > w[1].distance),
        "data this easy tells the modes apart from nothing"
    );
    // Strict: in order, the rows it drops are counted, and nothing else is lost.
    let (strict, st) = scan(Iterative::Strict, 0);
    assert!(strict.windows(2).all(|w| w[0].distance <= w[1].distance));
    assert!(st.dropped > 0);
    assert_eq!(strict.len() as u64 + st.dropped, data.len() as u64);
    assert_eq!(st.returned, strict.len() as u64);
    // Within the first round the two agree.
    let (off, st) = scan(Iterative::Off, 0);
    assert_eq!(st.rounds, 1);
    assert_eq!(st.lists, 2);
    assert_eq!(off.len() as u64, st.codes);
    assert_eq!(&relaxed[..off.len()], &off[..]);
    assert_eq!(&strict[..off.len()], &off[..]);
    // The cap: rounds stop once that many codes were scanned (the first round always runs).
    let (capped, st) = scan(Iterative::Relaxed, off.len() as u64 + 1);
    assert_eq!(st.rounds, 2);
    assert_eq!(capped.len() as u64, st.codes);
    let (one, st) = scan(Iterative::Relaxed, 1);
    assert_eq!((st.rounds, one.len()), (1, off.len()));
}

#[test]
fn churn_reuses_freed_vector_slots() {
    // Three rounds of "update" 20% of the rows (a new version at a new TID, the old one vacuumed)
    // as a table under UPDATE and VACUUM sees them: the index hardly grows.
    let mut data = rows(3000, 21);
    let rel = build_index(&data, Metric::L2, 20);
    let built = rel.len();
    let mut next_block = 10_000u32;
    for round in 0..3u64 {
        let old: HashSet<Tid> = data
            .iter()
            .filter(|(t, _)| (t.block as u64 + t.offset as u64 + round).is_multiple_of(5))
            .map(|(t, _)| *t)
            .collect();
        let fresh = rows(data.len(), 100 + round);
        let mut updated = Vec::new();
        for (i, (t, v)) in data.iter_mut().enumerate() {
            if old.contains(t) {
                let nt = Tid::new(next_block + i as u32 / 50, (i % 50 + 1) as u16);
                *v = fresh[i].1.clone();
                *t = nt;
                updated.push((nt, v.clone()));
            }
        }
        next_block += 100;
        // New versions are inserted before VACUUM removes the old ones (as PostgreSQL does).
        for (t, v) in &updated {
            insert(&rel, *t, v).unwrap();
        }
        let st = bulk_delete(&rel, &mut |t| old.contains(&t), &mut |_, _| {
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(st.removed as usize, old.len());
        let report = check(&rel, Some(&mut heap(&data))).expect("consistent after a round");
        assert_eq!(report.live as usize, data.len());
        assert_eq!(report.orphan_vectors, 0);
        if round == 0 {
            // Every slot freed is on a free chain, for the next round's inserts.
            assert_eq!(report.free_vectors, report.dead_vectors);
            assert_eq!(report.dead_vectors as usize, old.len());
        }
    }
    // 60% of the rows were rewritten: appending only, the index grew 1.39x here; reusing the
    // freed slots keeps the growth to about the first round's (inserted before any slot was free).
    let growth = rel.len() as f64 / built as f64;
    eprintln!(
        "churn: {built} pages after the build, {} after three rounds ({growth:.2}x)",
        rel.len()
    );
    assert!(growth < 1.25, "index grew {growth:.2}x under churn");
    // Every row is still found, exactly once, with its own vector.
    let q = &data[17].1;
    let mut s = Scan::new(
        &rel,
        q,
        ScanOptions {
            nprobe: 20,
            ..ScanOptions::default()
        },
    )
    .unwrap();
    let hits: Vec<_> = s.iter(&rel).collect();
    assert_eq!(hits.len(), data.len());
    assert_eq!(
        hits.iter().take(10).map(|h| h.tid).collect::<Vec<_>>(),
        exact(&data, Metric::L2, q, 10)
    );
}

#[test]
fn a_scan_skips_codes_vacuumed_and_reused_under_it() {
    let data = rows(1000, 31);
    let rel = build_index(&data, Metric::L2, 4);
    let q = &data[5].1;
    let mut s = Scan::new(
        &rel,
        q,
        ScanOptions {
            nprobe: 4,
            ..ScanOptions::default()
        },
    )
    .unwrap();
    // The scan has read every code of the index and returned the nearest row.
    let first = s.next(&rel).unwrap();
    // Now VACUUM removes half the rows, and inserts take their slots for new rows.
    let gone = |t: Tid| t.offset.is_multiple_of(2) && t != first.tid;
    bulk_delete(
        &rel,
        &mut |t| gone(t),
        &mut |_, _| ControlFlow::Continue(()),
    )
    .unwrap();
    let newcomers = rows(300, 32);
    for (i, (_, v)) in newcomers.iter().enumerate() {
        insert(&rel, Tid::new(50_000 + i as u32, 1), v).unwrap();
    }
    let free_before = check(&rel, None).unwrap().free_vectors;
    assert!(free_before < 500, "the inserts reused no slot");
    // The rest of the scan: no panic, no removed row, no newcomer (its code was not read), and
    // the skipped candidates are counted.
    let rest: Vec<_> = s.iter(&rel).collect();
    assert!(rest.iter().all(|h| !gone(h.tid) && h.tid.block < 50_000));
    assert_eq!(
        rest.len() + 1,
        data.iter().filter(|(t, _)| !gone(*t)).count()
    );
    assert!(s.stats().skipped > 0);
    assert!(rest.windows(2).all(|w| w[0].distance <= w[1].distance));
}

#[test]
fn a_free_chain_head_left_by_a_crash_is_dropped() {
    let data = rows(600, 41);
    let rel = build_index(&data, Metric::L2, 2);
    let gone = |t: Tid| t.offset.is_multiple_of(3);
    bulk_delete(
        &rel,
        &mut |t| gone(t),
        &mut |_, _| ControlFlow::Continue(()),
    )
    .unwrap();
    let meta = read_meta(&rel);
    // A reuse whose vector page reached the disk and whose directory record did not: the head's
    // slot holds a live vector (as if written by the lost insert).
    let (dblk, off) = meta.entry_at(0);
    let (fb, fs) = {
        let p = rel.read(dblk);
        page::ListEntry::read(&p, off)
            .free
            .expect("list 0 has a free chain")
    };
    {
        let mut p = rel.write(fb);
        let voff = page::record(fs as usize, page::vec_stride(DIMS));
        page::write_vector(&mut p, voff, Tid::new(90_000, 1), &data[0].1);
    }
    let r = check(&rel, None).expect("a stale head is not corruption");
    assert_eq!(r.orphan_vectors, 1);
    // Inserts into that list drop the chain and append; the index stays consistent.
    let near0 = {
        let p = rel.read(dblk);
        page::get_f32s(&p, off + page::CENTROID, DIMS).to_vec()
    };
    for i in 0..5u32 {
        assert!(insert(&rel, Tid::new(91_000 + i, 1), &near0).unwrap());
    }
    {
        let p = rel.read(dblk);
        assert_eq!(page::ListEntry::read(&p, off).free, None);
    }
    check(&rel, None).expect("consistent after the chain was dropped");
    // A chain whose interior names a live slot is corruption.
    let (dblk1, off1) = meta.entry_at(1);
    let (hb, hs) = {
        let p = rel.read(dblk1);
        page::ListEntry::read(&p, off1)
            .free
            .expect("list 1 has a free chain")
    };
    let second = {
        let p = rel.read(hb);
        page::free_vector_link(&p, page::record(hs as usize, page::vec_stride(DIMS)))
            .expect("a second free slot")
    };
    {
        let mut p = rel.write(second.0);
        let voff = page::record(second.1 as usize, page::vec_stride(DIMS));
        page::write_vector(&mut p, voff, Tid::new(92_000, 1), &data[0].1);
    }
    let e = check(&rel, None).unwrap_err().to_string();
    assert!(e.contains("free chain"), "{e}");
}
