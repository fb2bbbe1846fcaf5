//! Checkpoints: round trips through bytes, and clear errors for corrupt or mismatched ones.

mod common;

use synthsearch_model::checkpoint::MAGIC;
use synthsearch_model::{Model, ModelError, Reference};
use tch::Device;

fn image(seed: usize) -> Vec<f32> {
    let n = 3 * common::SIZE * common::SIZE;
    (0..n)
        .map(|i| (((i * 31 + seed * 7) % 200) as f32 / 100.0) - 1.0)
        .collect()
}

#[test]
fn round_trip_gives_the_same_outputs_and_versions() {
    let m = common::model(11);
    let bytes = m.to_bytes().unwrap();
    let back = Model::from_bytes(&bytes, Device::Cpu).unwrap();
    assert_eq!(
        m.encoder_version().unwrap(),
        back.encoder_version().unwrap()
    );
    assert_eq!(
        m.generator_version().unwrap(),
        back.generator_version().unwrap()
    );
    let img = image(1);
    assert_eq!(
        m.encode_images(&img, 1).unwrap(),
        back.encode_images(&img, 1).unwrap()
    );
    let a = m
        .generate(Reference::Image(&img), "in black leather", Some(3))
        .unwrap();
    let b = back
        .generate(Reference::Image(&img), "in black leather", Some(3))
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(a.image.len(), 3 * common::SIZE * common::SIZE);
    assert_eq!(a.embedding.len(), 32);
    let norm: f32 = a.embedding.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!(
        (norm - 1.0).abs() < 1e-4,
        "embeddings are unit vectors, not {norm}"
    );
    // From a stored embedding (no pixels): works, and the same after the round trip.
    let e = m.encode_images(&img, 1).unwrap();
    let c = m
        .generate(Reference::Embedding(&e), "in black leather", Some(3))
        .unwrap();
    let d = back
        .generate(Reference::Embedding(&e), "in black leather", Some(3))
        .unwrap();
    assert_eq!(c, d);
    // Text only, and the composition baseline.
    assert_eq!(
        m.generate(Reference::None, "is red", None)
            .unwrap()
            .embedding
            .len(),
        32
    );
    assert_eq!(
        m.compose(Reference::Embedding(&e), "is red").unwrap().len(),
        32
    );
}

#[test]
fn corrupt_and_mismatched_checkpoints_are_errors() {
    let bytes = common::model(12).to_bytes().unwrap();
    let err = |b: &[u8]| Model::from_bytes(b, Device::Cpu).unwrap_err();

    assert!(matches!(err(b"hello"), ModelError::Corrupt(_)));
    assert!(matches!(
        err(&bytes[..bytes.len() / 2]),
        ModelError::Corrupt(_)
    ));
    let mut flipped = bytes.clone();
    let last = flipped.len() - 10;
    flipped[last] ^= 0x55;
    let e = err(&flipped);
    assert!(e.to_string().contains("checksum"), "{e}");
    let mut future = bytes.clone();
    future[8] = 99;
    assert!(matches!(
        err(&future),
        ModelError::UnsupportedFormat { found: 99, .. }
    ));
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(err(&trailing).to_string().contains("trailing"));
    assert_eq!(&bytes[..8], MAGIC);

    // Weights of another architecture under a valid header: rewrite the header's width.
    let hlen = u64::from_le_bytes(bytes[12..20].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[20..20 + hlen]).unwrap();
    let changed = header.replacen("\"embed_dim\":32", "\"embed_dim\":48", 1);
    assert_ne!(header, changed);
    let mut other = Vec::new();
    other.extend_from_slice(&bytes[..12]);
    other.extend_from_slice(&(changed.len() as u64).to_le_bytes());
    other.extend_from_slice(changed.as_bytes());
    other.extend_from_slice(&bytes[20 + hlen..]);
    let e = err(&other);
    assert!(matches!(e, ModelError::Mismatch(_)), "{e}");
    assert!(e.to_string().contains("shape"), "{e}");
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let m = common::model(13);
    let e = m
        .generate(Reference::Embedding(&[0.5; 3]), "is red", None)
        .unwrap_err();
    assert_eq!(e.to_string(), "expected 32 dimensions, not 3");
    let mut nan = vec![0.1f32; 32];
    nan[4] = f32::NAN;
    let e = m
        .generate(Reference::Embedding(&nan), "is red", None)
        .unwrap_err();
    assert!(e.to_string().contains("position 4"), "{e}");
    assert!(matches!(
        m.generate(Reference::None, " ,", None),
        Err(ModelError::EmptyText(_))
    ));
    let long = "red ".repeat(5000);
    assert!(matches!(
        m.compose(Reference::None, &long),
        Err(ModelError::TextTooLong { .. })
    ));
    assert!(matches!(
        m.encode_images(&[0.0; 5], 1),
        Err(ModelError::Dimension { .. })
    ));
}

#[test]
fn replacing_a_generator_needs_the_same_encoder() {
    let mut a = common::model(14);
    let b = common::model(15);
    let e = a.replace_generator(b).unwrap_err();
    assert!(e.to_string().contains("encoder"), "{e}");
}

#[test]
fn generator_without_the_composed_condition_still_loads_and_keeps_its_config_text() {
    // Checkpoints written before the composed condition existed have no such key; a config with
    // the switch off must serialize exactly as they did, or their versions would change.
    let mut init = common::init();
    init.generator.compose_condition = false;
    let json = serde_json::to_string(&init.generator).unwrap();
    assert!(!json.contains("compose_condition"), "{json}");
    assert!(!json.contains("pixel_skips"), "{json}");
    let back: synthsearch_model::GeneratorConfig = serde_json::from_str(&json).unwrap();
    assert!(!back.compose_condition);
    // Nor had they the query expansion: they read as without it, and write no such key.
    let mut old = back.clone();
    old.query_expansion = None;
    let json = serde_json::to_string(&old).unwrap();
    assert!(!json.contains("query_expansion"), "{json}");
    assert_eq!(old.expansion(), 0.0);

    let m = common::seeded(12, || Model::new(init, Device::Cpu).unwrap());
    let loaded = Model::from_bytes(&m.to_bytes().unwrap(), Device::Cpu).unwrap();
    assert!(!loaded.generator_config().compose_condition);
    assert_eq!(
        m.generator_version().unwrap(),
        loaded.generator_version().unwrap()
    );
    let img = image(2);
    let a = m
        .generate(Reference::Image(&img), "is red", Some(1))
        .unwrap();
    assert_eq!(
        a,
        loaded
            .generate(Reference::Image(&img), "is red", Some(1))
            .unwrap()
    );
    // The two generators are different networks: the switch is part of the generator version.
    let on = common::model(12);
    assert_ne!(
        on.generator_version().unwrap(),
        m.generator_version().unwrap()
    );
}

#[test]
fn pixel_skips_choose_what_of_the_source_pixels_reaches_the_generator() {
    use tch::{Kind, Tensor};
    let n = common::SIZE as i64;
    let e = Tensor::ones([2, 32], (Kind::Float, Device::Cpu)) / 32f64.sqrt();
    let has = Tensor::ones([2, 1], (Kind::Float, Device::Cpu));
    let texts = vec![vec!["is".to_string(), "red".to_string()]; 2];
    let z = Tensor::zeros([2, 8], (Kind::Float, Device::Cpu));
    let px_a = Tensor::from_slice(&[image(1), image(2)].concat()).view([2, 3, n, n]);
    let px_b = -&px_a;
    // The generated image for two different source images under the same embedding and text.
    let outputs = |skips: Option<u32>| {
        let mut init = common::init();
        init.generator.pixel_skips = skips;
        let m = common::seeded(21, || Model::new(init, Device::Cpu).unwrap());
        let run = |px: &Tensor| {
            let (img, emb) = m.generate_tensor(&e, &has, Some(px), &texts, &z).unwrap();
            assert_eq!(img.size(), [2, 3, n, n]);
            assert_eq!(emb.size(), [2, 32]);
            img
        };
        let back = Model::from_bytes(&m.to_bytes().unwrap(), Device::Cpu).unwrap();
        assert_eq!(back.generator_config().pixel_skips, skips);
        assert_eq!(
            back.generator_version().unwrap(),
            m.generator_version().unwrap()
        );
        let (a, b) = (run(&px_a), run(&px_b));
        (a, b, m.generator_version().unwrap())
    };
    // Without skips the pixels cannot matter; with any, they do.
    let (a, b, v0) = outputs(Some(0));
    assert_eq!(a, b);
    let mut versions = vec![v0];
    for skips in [Some(1), Some(2), None] {
        let (a, b, v) = outputs(skips);
        let diff = (a - b).abs().max().double_value(&[]);
        assert!(
            diff > 1e-4,
            "pixel_skips {skips:?}: outputs differ by {diff}"
        );
        versions.push(v);
    }
    // Each setting is another network, so another generator version.
    versions.sort();
    versions.dedup();
    assert_eq!(versions.len(), 4);

    let mut init = common::init();
    init.generator.pixel_skips = Some(17);
    let Err(err) = Model::new(init, Device::Cpu) else {
        panic!("pixel_skips 17 was accepted");
    };
    assert!(err.to_string().contains("pixel_skips"), "{err}");
}

fn unit(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

#[test]
fn query_expansion_adds_the_composed_query_to_the_synthesized_images_embedding() {
    let mut m = common::model(16);
    assert_eq!(m.query_expansion(), 1.0);
    let img = image(4);
    let e = m.encode_images(&img, 1).unwrap();
    for (reference, text) in [
        (Reference::Image(&img), "in black leather"),
        (Reference::Embedding(&e), "is red"),
        (Reference::None, "has short sleeves"),
    ] {
        m.set_query_expansion(0.0).unwrap();
        let alone = m.generate(reference, text, None).unwrap();
        let composed = m.compose(reference, text).unwrap();
        let v0 = m.generator_version().unwrap();
        m.set_query_expansion(2.5).unwrap();
        assert_ne!(
            v0,
            m.generator_version().unwrap(),
            "the search embeddings changed, so the generator version must"
        );
        let expanded = m.generate(reference, text, None).unwrap();
        // The image is the same; its search embedding moves toward the composed query.
        assert_eq!(alone.image, expanded.image);
        let want: Vec<f32> = alone
            .embedding
            .iter()
            .zip(&composed)
            .map(|(a, q)| a + 2.5 * q)
            .collect();
        let d = common::max_diff(&expanded.embedding, &unit(&want));
        assert!(d < 1e-5, "{text}: off by {d}");
        assert!(common::max_diff(&expanded.embedding, &alone.embedding) > 1e-3);
        // Batched generation gives the same.
        let batch = m.generate_batch(&[(reference, text)]).unwrap();
        assert!(common::max_diff(&batch[0].embedding, &expanded.embedding) < 1e-5);
    }
    // A checkpoint keeps the weight.
    let back = Model::from_bytes(&m.to_bytes().unwrap(), Device::Cpu).unwrap();
    assert_eq!(back.query_expansion(), 2.5);
    assert_eq!(
        back.generate(Reference::Image(&img), "is red", None)
            .unwrap(),
        m.generate(Reference::Image(&img), "is red", None).unwrap()
    );
    // Bad weights are refused and change nothing.
    let v = m.generator_version().unwrap();
    for w in [-0.5, 100.5, f64::NAN, f64::INFINITY] {
        let e = m.set_query_expansion(w).unwrap_err();
        assert!(e.to_string().contains("query_expansion"), "{e}");
    }
    assert_eq!(m.query_expansion(), 2.5);
    assert_eq!(v, m.generator_version().unwrap());
}
