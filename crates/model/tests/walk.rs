//! The walk between two queries: its ends are the plain generations, its points are in order,
//! and bad input is an error.

mod common;

use synthsearch_model::train::run;
use synthsearch_model::{MAX_WALK_POINTS, ModelError, Reference, Trainer, WalkEnd};

#[test]
fn walk_ends_are_the_plain_generations_and_bad_input_errors() {
    synthsearch_model::set_threads(2);
    let data = common::data(80);
    let untrained = common::model(5);
    let a = Vec::<f32>::try_from(&data.batch(&[0]).flatten(0, -1)).unwrap();
    let b = Vec::<f32>::try_from(&data.batch(&[1]).flatten(0, -1)).unwrap();
    let end = |reference, text| WalkEnd { reference, text };
    // A model whose GAN never trained has no generator to walk with.
    assert!(matches!(
        untrained.walk(
            end(Reference::None, "is red"),
            end(Reference::None, "is blue"),
            3,
            None
        ),
        Err(ModelError::NoGenerator)
    ));

    let mut t = Trainer::new(common::model(5), common::train_config(5, 5), data.clone()).unwrap();
    run(&mut t, 10).unwrap();
    let m = t.model();
    let cases = [
        // Two wishes on one reference, two references under one wish, two text-only wishes.
        (
            (Reference::Image(&a), "is red"),
            (Reference::Image(&a), "is blue and striped"),
        ),
        (
            (Reference::Image(&a), "in black leather"),
            (Reference::Image(&b), "in black leather"),
        ),
        (
            (Reference::None, "is red"),
            (Reference::None, "has short sleeves"),
        ),
    ];
    for ((r0, w0), (r1, w1)) in cases {
        let walk = m.walk(end(r0, w0), end(r1, w1), 5, Some(9)).unwrap();
        let positions: Vec<f64> = walk.iter().map(|(p, _)| *p).collect();
        assert_eq!(positions, [0.0, 0.25, 0.5, 0.75, 1.0]);
        let first = m.generate(r0, w0, Some(9)).unwrap();
        let last = m.generate(r1, w1, Some(9)).unwrap();
        assert!(common::max_diff(&walk[0].1.image, &first.image) < 1e-4);
        assert!(common::max_diff(&walk[0].1.embedding, &first.embedding) < 1e-4);
        assert!(common::max_diff(&walk[4].1.image, &last.image) < 1e-4);
        assert!(common::max_diff(&walk[4].1.embedding, &last.embedding) < 1e-4);
        // It moves: the middle is neither end.
        assert!(common::max_diff(&walk[2].1.image, &first.image) > 1e-4);
        assert!(common::max_diff(&walk[2].1.image, &last.image) > 1e-4);
    }

    let q = |text| end(Reference::Image(&a), text);
    for points in [0, 1, MAX_WALK_POINTS + 1] {
        assert!(matches!(
            m.walk(q("is red"), q("is blue"), points, None),
            Err(ModelError::Config(_))
        ));
    }
    assert_eq!(
        m.walk(q("is red"), q("is blue"), MAX_WALK_POINTS, None)
            .unwrap()
            .len(),
        MAX_WALK_POINTS
    );
    assert!(matches!(
        m.walk(q("is red"), q("  "), 3, None),
        Err(ModelError::EmptyText(_))
    ));
    assert!(matches!(
        m.walk(
            end(Reference::Embedding(&[0.5; 3]), "is red"),
            q("is blue"),
            3,
            None
        ),
        Err(ModelError::Dimension { .. })
    ));
}

#[test]
fn a_batch_gives_what_one_generation_per_query_gives() {
    synthsearch_model::set_threads(2);
    let data = common::data(80);
    let mut t = Trainer::new(common::model(6), common::train_config(6, 6), data.clone()).unwrap();
    run(&mut t, 10).unwrap();
    let m = t.model();
    let a = Vec::<f32>::try_from(&data.batch(&[0]).flatten(0, -1)).unwrap();
    let b = Vec::<f32>::try_from(&data.batch(&[1]).flatten(0, -1)).unwrap();
    // A stored embedding, not unit length: the model normalizes it, in a batch as alone.
    let stored: Vec<f32> = m
        .encode_images(&b, 1)
        .unwrap()
        .iter()
        .map(|x| x * 3.0)
        .collect();
    let queries = [
        (Reference::Image(&a), "in black leather"),
        (Reference::None, "is red"),
        (Reference::Embedding(&stored), "has short sleeves"),
        (Reference::Image(&b), "is blue and striped"),
        (Reference::Image(&a), "is red"),
    ];
    let batch = m.generate_batch(&queries).unwrap();
    assert_eq!(batch.len(), queries.len());
    for ((reference, text), got) in queries.iter().zip(&batch) {
        let one = m.generate(*reference, text, None).unwrap();
        assert!(common::max_diff(&got.image, &one.image) < 1e-5, "{text}");
        assert!(
            common::max_diff(&got.embedding, &one.embedding) < 1e-5,
            "{text}"
        );
    }
    // Different queries give different images (the batch does not repeat one row).
    assert!(common::max_diff(&batch[0].image, &batch[4].image) > 1e-4);
    assert!(m.generate_batch(&[]).unwrap().is_empty());
    // A bad query is the batch's error, and check_query finds it alone.
    let short = [0.5f32; 3];
    for (reference, text) in [
        (Reference::None, "   "),
        (Reference::Embedding(&short), "is red"),
        (Reference::Image(&short), "is red"),
    ] {
        assert!(m.check_query(reference, text).is_err());
        assert!(
            m.generate_batch(&[(Reference::None, "is red"), (reference, text)])
                .is_err()
        );
    }
    assert!(m.check_query(Reference::Image(&a), "is red").is_ok());
}
