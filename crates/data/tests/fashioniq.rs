//! The writer and the reader of the Fashion-IQ layout, and the reader's errors.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use image::ImageFormat;
use synthsearch_data::fashioniq::{self, FiqError, ReadOptions};
use synthsearch_data::image_io::{self, DecodeLimits};
use synthsearch_data::{CatalogConfig, Category, Split, generate, write_fashioniq};

fn small() -> synthsearch_data::Catalog {
    generate(&CatalogConfig {
        products: 90,
        image_size: 32,
        seed: 4,
        ..CatalogConfig::default()
    })
}

#[test]
fn reader_round_trips_what_the_writer_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let cat = small();
    let summary = write_fashioniq(&cat, dir.path(), ImageFormat::Png).unwrap();
    assert_eq!((summary.images, summary.pairs), (90, cat.pairs.len()));
    assert!(dir.path().join("captions/cap.dress.train.json").is_file());
    assert!(
        dir.path()
            .join("image_splits/split.toptee.val.json")
            .is_file()
    );

    let data = fashioniq::read(dir.path()).unwrap();
    assert_eq!(data.skipped, 0);
    assert_eq!(data.triplets.len(), cat.pairs.len());
    let written: BTreeSet<_> = cat
        .pairs
        .iter()
        .map(|p| {
            (
                p.candidate.clone(),
                p.target.clone(),
                p.captions.to_vec(),
                p.category.name().to_string(),
                p.split,
            )
        })
        .collect();
    let read: BTreeSet<_> = data
        .triplets
        .iter()
        .map(|t| {
            (
                t.candidate.clone(),
                t.target.clone(),
                t.captions.clone(),
                t.category.clone(),
                t.split,
            )
        })
        .collect();
    assert_eq!(written, read);

    for p in &cat.products {
        let ids = &data.splits[&(p.category.name().to_string(), p.split)];
        assert!(ids.contains(&p.id));
        assert_eq!(data.attributes.as_ref().unwrap()[&p.id].attrs, p.attrs);
    }
    assert_eq!(
        data.ids_in(Split::Train).count(),
        cat.products
            .iter()
            .filter(|p| p.split == Split::Train)
            .count()
    );
    assert_eq!(
        data.triplets_in(Split::Val).count(),
        cat.pairs.iter().filter(|p| p.split == Split::Val).count()
    );
    let p = &cat.products[5];
    assert_eq!(
        data.load_image(&p.id, &DecodeLimits::default()).unwrap(),
        p.render(32)
    );
}

#[test]
fn writing_is_deterministic() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cat = small();
    write_fashioniq(&cat, a.path(), ImageFormat::Png).unwrap();
    write_fashioniq(&cat, b.path(), ImageFormat::Png).unwrap();
    let mut files = 0;
    for sub in ["captions", "image_splits", "images"] {
        for entry in fs::read_dir(a.path().join(sub)).unwrap() {
            let path = entry.unwrap().path();
            let other = b.path().join(sub).join(path.file_name().unwrap());
            assert_eq!(
                fs::read(&path).unwrap(),
                fs::read(other).unwrap(),
                "{}",
                path.display()
            );
            files += 1;
        }
    }
    assert_eq!(files, 9 + 9 + 90);
    assert_eq!(
        fs::read(a.path().join("attributes.json")).unwrap(),
        fs::read(b.path().join("attributes.json")).unwrap()
    );
}

#[test]
fn jpeg_and_webp_images_are_found() {
    for (format, ext) in [(ImageFormat::Jpeg, "jpg"), (ImageFormat::WebP, "webp")] {
        let dir = tempfile::tempdir().unwrap();
        let cat = small();
        write_fashioniq(&cat, dir.path(), format).unwrap();
        let data = fashioniq::read(dir.path()).unwrap();
        let id = &cat.products[0].id;
        assert_eq!(data.image_path(id).unwrap().extension().unwrap(), ext);
        let img = data.load_image(id, &DecodeLimits::default()).unwrap();
        assert_eq!(img.dimensions(), (32, 32));
    }
}

/// A hand-written data set: two dress images and one caption.
fn tiny(dir: &Path) {
    for sub in ["captions", "image_splits", "images"] {
        fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let png = image_io::encode_png(&image::RgbImage::new(4, 4)).unwrap();
    fs::write(dir.join("images/a.png"), &png).unwrap();
    fs::write(
        dir.join("images/b.jpeg"),
        image_io::encode(&image::RgbImage::new(4, 4), ImageFormat::Jpeg).unwrap(),
    )
    .unwrap();
    fs::write(dir.join("images/notes.txt"), "ignored").unwrap();
    fs::write(
        dir.join("image_splits/split.dress.train.json"),
        r#"["a", "b"]"#,
    )
    .unwrap();
    fs::write(
        dir.join("captions/cap.dress.train.json"),
        r#"[{"candidate": "a", "target": "b", "captions": ["is red", "in red"]}]"#,
    )
    .unwrap();
}

#[test]
fn reads_a_hand_written_data_set() {
    let dir = tempfile::tempdir().unwrap();
    tiny(dir.path());
    let data = fashioniq::read(dir.path()).unwrap();
    assert_eq!(data.triplets.len(), 1);
    let t = &data.triplets[0];
    assert_eq!(
        (
            t.candidate.as_str(),
            t.target.as_str(),
            t.category.as_str(),
            t.split
        ),
        ("a", "b", "dress", Split::Train)
    );
    assert_eq!(t.captions, ["is red", "in red"]);
    assert!(data.attributes.is_none());
    assert_eq!(data.images.len(), 2);
    assert_eq!(Category::parse(&t.category).unwrap(), Category::Dress);
}

#[test]
fn malformed_json_names_the_file_and_place() {
    let dir = tempfile::tempdir().unwrap();
    tiny(dir.path());
    fs::write(
        dir.path().join("captions/cap.dress.train.json"),
        "[\n  {\"candidate\": \"a\",\n  \"target\": }\n]",
    )
    .unwrap();
    let err = fashioniq::read(dir.path()).unwrap_err();
    match &err {
        FiqError::Json { path, line, .. } => {
            assert!(path.ends_with("captions/cap.dress.train.json"));
            assert_eq!(*line, 3);
        }
        other => panic!("expected a json error, got {other}"),
    }
    let text = err.to_string();
    assert!(
        text.starts_with("malformed json in ") && text.contains("cap.dress.train.json at line 3"),
        "{text}"
    );

    // Valid JSON of the wrong shape is malformed too.
    fs::write(
        dir.path().join("captions/cap.dress.train.json"),
        r#"[{"candidate": "a", "captions": ["x"]}]"#,
    )
    .unwrap();
    let err = fashioniq::read(dir.path()).unwrap_err();
    assert!(err.to_string().contains("missing field `target`"), "{err}");
}

#[test]
fn unknown_id_in_captions_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    tiny(dir.path());
    fs::write(
        dir.path().join("captions/cap.dress.train.json"),
        r#"[{"candidate": "a", "target": "b", "captions": ["x"]}, {"candidate": "a", "target": "zz", "captions": ["y"]}]"#,
    )
    .unwrap();
    let err = fashioniq::read(dir.path()).unwrap_err();
    assert!(
        matches!(&err, FiqError::UnknownId { id, index: 1, role: "target", .. } if id == "zz"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("entry 1: target \"zz\" is in no image_splits file"),
        "{err}"
    );
}

#[test]
fn missing_image_is_an_error_unless_skipped() {
    let dir = tempfile::tempdir().unwrap();
    tiny(dir.path());
    fs::remove_file(dir.path().join("images/b.jpeg")).unwrap();
    let err = fashioniq::read(dir.path()).unwrap_err();
    assert!(
        matches!(&err, FiqError::MissingImage { id, .. } if id == "b"),
        "{err}"
    );
    assert!(err.to_string().starts_with("no image for \"b\""), "{err}");

    let data = fashioniq::read_with(dir.path(), &ReadOptions { skip_missing: true }).unwrap();
    assert!(data.triplets.is_empty());
    assert_eq!(data.skipped, 2, "one split entry and one triplet");
    assert_eq!(data.splits[&("dress".to_string(), Split::Train)], ["a"]);
}

#[test]
fn layout_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let err = fashioniq::read(dir.path()).unwrap_err();
    assert!(
        matches!(err, FiqError::Io { .. }) && err.to_string().contains("images"),
        "{err}"
    );

    tiny(dir.path());
    fs::write(
        dir.path().join("image_splits/split.dress.holdout.json"),
        "[]",
    )
    .unwrap();
    let err = fashioniq::read(dir.path()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "unknown split \"holdout\" in file name {}; expected train, val or test",
            dir.path()
                .join("image_splits/split.dress.holdout.json")
                .display()
        )
    );
    fs::remove_file(dir.path().join("image_splits/split.dress.holdout.json")).unwrap();

    fs::write(
        dir.path().join("captions/cap.dress.train.json"),
        r#"[{"candidate": "a", "target": "b", "captions": []}]"#,
    )
    .unwrap();
    let err = fashioniq::read(dir.path()).unwrap_err();
    assert!(
        matches!(err, FiqError::EmptyCaptions { index: 0, .. }),
        "{err}"
    );

    fs::remove_file(dir.path().join("captions/cap.dress.train.json")).unwrap();
    let err = fashioniq::read(dir.path()).unwrap_err();
    assert!(matches!(err, FiqError::NoCaptions { .. }), "{err}");
}

#[test]
fn corrupt_image_file_is_an_error_on_load() {
    let dir = tempfile::tempdir().unwrap();
    tiny(dir.path());
    fs::write(dir.path().join("images/a.png"), b"\x89PNG\r\n\x1a\nbroken").unwrap();
    let data = fashioniq::read(dir.path()).unwrap();
    let err = data.load_image("a", &DecodeLimits::default()).unwrap_err();
    assert!(matches!(err, FiqError::Image { .. }), "{err}");
    assert!(err.to_string().contains("invalid png image"), "{err}");
    let err = data
        .load_image("nope", &DecodeLimits::default())
        .unwrap_err();
    assert!(matches!(err, FiqError::MissingImage { .. }), "{err}");
}
