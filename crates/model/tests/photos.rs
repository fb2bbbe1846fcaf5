//! Product photos written by `synth photos` (the Fashion-IQ layout with the tags in columns.json)
//! read back as a training data set: the tags become the attribute table and every pair's wish
//! is the target's values of the tags the pair changes.

use std::collections::HashMap;
use std::path::Path;

use synthsearch_data::Split;
use synthsearch_data::photos::{self, COLUMNS, PhotoCatalog, PhotoConfig};
use synthsearch_model::Dataset;

const SIDE: usize = 28;

/// Writes an uncompressed IDX pair `<stem>-{images,labels}` of `n` products: bodies of three
/// greys, every other ten of them striped, labels cycling through the ten kinds.
fn write_source(dir: &Path, stem: &str, n: usize) {
    let mut images = vec![0, 0, 8, 3];
    for d in [n, SIDE, SIDE] {
        images.extend_from_slice(&(d as u32).to_be_bytes());
    }
    let mut labels = vec![0, 0, 8, 1];
    labels.extend_from_slice(&(n as u32).to_be_bytes());
    for i in 0..n {
        let grey = [30u8, 120, 210][(i / 10) % 3];
        let striped = (i / 30) % 2 == 1;
        for y in 0..SIDE {
            for x in 0..SIDE {
                let inside = (4..24).contains(&x) && (4..24).contains(&y);
                let g = if striped && (y / 2) % 2 == 1 {
                    200
                } else {
                    grey
                };
                images.push(if inside { 255 - g } else { 0 });
            }
        }
        labels.push((i % 10) as u8);
    }
    std::fs::write(dir.join(format!("{stem}-images-idx3-ubyte")), images).unwrap();
    std::fs::write(dir.join(format!("{stem}-labels-idx1-ubyte")), labels).unwrap();
}

fn check(catalog: &PhotoCatalog, dir: &Path) {
    photos::write(catalog, dir).unwrap();
    let d = Dataset::from_fashioniq(dir, 16).unwrap();
    assert_eq!(d.len(), catalog.photos.len());
    let t = d.attributes.as_ref().expect("the tags as attributes");
    assert_eq!(t.columns, COLUMNS);
    let by_id: HashMap<&str, &photos::Photo> =
        catalog.photos.iter().map(|p| (p.id.as_str(), p)).collect();
    for (i, id) in d.ids.iter().enumerate() {
        let p = by_id[id.as_str()];
        assert_eq!(d.categories[i], p.category());
        for (c, v) in p.tags.names().iter().enumerate() {
            assert_eq!(t.value(i, c), Some(*v), "{id} column {c}");
        }
    }
    let pairs = catalog
        .pairs
        .iter()
        .filter(|p| p.split != Split::Test)
        .count();
    assert_eq!(d.train.len() + d.val.len(), pairs);
    assert!(!d.val.is_empty());
    for p in d.train.iter().chain(&d.val) {
        let target = by_id[d.ids[p.target].as_str()];
        let candidate = by_id[d.ids[p.candidate].as_str()];
        assert!((1..=2).contains(&p.wish.len()));
        for &(c, code) in &p.wish {
            assert_eq!(t.values[c][code as usize], target.tags.names()[c]);
            assert_ne!(target.tags.names()[c], candidate.tags.names()[c]);
        }
    }
}

#[test]
fn written_photos_read_back_with_their_tags_and_wishes() {
    let src = tempfile::tempdir().unwrap();
    write_source(src.path(), "train", 240);
    write_source(src.path(), "t10k", 60);
    let catalog = photos::load(
        src.path(),
        &PhotoConfig {
            val_share: 0.25,
            ..PhotoConfig::default()
        },
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    check(&catalog, out.path());
}

/// The same on the real photos, when Debian's dataset-fashion-mnist is installed.
#[test]
fn real_photos_read_back_with_their_tags() {
    let src = Path::new(photos::SOURCE_DIR);
    if !src.join("t10k-labels-idx1-ubyte.gz").exists() {
        eprintln!(
            "skipped: no {} (apt-get install dataset-fashion-mnist)",
            photos::SOURCE_DIR
        );
        return;
    }
    let catalog = photos::load(
        src,
        &PhotoConfig {
            products: Some(300),
            ..PhotoConfig::default()
        },
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    check(&catalog, out.path());
}
