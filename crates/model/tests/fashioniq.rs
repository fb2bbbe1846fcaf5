//! A catalog written in the Fashion-IQ layout and read back (what `synth ... --data DIR` does with
//! the folder `synth_generate_catalog` writes) has the attributes, wishes and pairs of the catalog
//! read directly: attributes.json is read, not only the captions.

use std::collections::{BTreeMap, BTreeSet};

use image::ImageFormat;
use synthsearch_data::{Catalog, CatalogConfig, generate, write_fashioniq};
use synthsearch_model::Dataset;

const SIZE: usize = 16;

/// (candidate id, target id) -> the wish as (column, value) names, over both splits.
fn wishes(d: &Dataset) -> BTreeMap<(String, String), BTreeSet<(String, String)>> {
    let t = d.attributes.as_ref().expect("attributes");
    d.train
        .iter()
        .chain(d.val.iter())
        .map(|p| {
            let wish = p
                .wish
                .iter()
                .map(|&(c, code)| (t.columns[c].clone(), t.values[c][code as usize].clone()))
                .collect();
            ((d.ids[p.candidate].clone(), d.ids[p.target].clone()), wish)
        })
        .collect()
}

/// A generated catalog of `products` and the Fashion-IQ folder written from it.
fn written(products: usize) -> (Catalog, tempfile::TempDir) {
    let cat = generate(&CatalogConfig {
        seed: 11,
        products,
        image_size: SIZE as u32,
        split_shares: [0.6, 0.4, 0.0],
        ..CatalogConfig::default()
    });
    let dir = tempfile::tempdir().unwrap();
    write_fashioniq(&cat, dir.path(), ImageFormat::Png).unwrap();
    (cat, dir)
}

#[test]
fn a_written_catalog_reads_back_with_its_attributes_and_wishes() {
    let (cat, dir) = written(90);
    let read = Dataset::from_fashioniq(dir.path(), SIZE).unwrap();
    let direct = Dataset::from_catalog(&cat, SIZE).unwrap();

    let (r, d) = (
        read.attributes.as_ref().unwrap(),
        direct.attributes.as_ref().unwrap(),
    );
    assert_eq!(r.columns, d.columns);
    assert_eq!(read.len(), direct.len());
    let mut compared = 0;
    for (i, id) in read.ids.iter().enumerate() {
        let j = direct
            .ids
            .iter()
            .position(|x| x == id)
            .expect("same images");
        for c in 0..r.columns.len() {
            assert_eq!(r.value(i, c), d.value(j, c), "{id}: {}", r.columns[c]);
            assert!(r.value(i, c).is_some(), "{id} has every generated value");
            compared += 1;
        }
    }
    assert_eq!(compared, 90 * 6);

    let (w_read, w_direct) = (wishes(&read), wishes(&direct));
    assert!(!w_read.is_empty());
    assert_eq!(w_read, w_direct);
    // Every pair asks for something, as the generated captions do.
    assert!(w_read.values().all(|w| !w.is_empty()));
}

#[test]
fn a_folder_without_attributes_reads_as_captions_only() {
    let (_, dir) = written(40);
    std::fs::remove_file(dir.path().join("attributes.json")).unwrap();
    let read = Dataset::from_fashioniq(dir.path(), SIZE).unwrap();
    assert!(read.attributes.is_none());
    assert!(!read.train.is_empty());
    assert!(
        read.train
            .iter()
            .chain(read.val.iter())
            .all(|p| p.wish.is_empty())
    );
}
