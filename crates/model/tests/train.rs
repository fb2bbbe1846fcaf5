//! Trains a tiny model with a fixed seed: losses move the right way, recall beats chance, and a
//! run stopped and resumed from its checkpoint continues exactly.

mod common;

use synthsearch_model::eval::{Method, evaluate};
use synthsearch_model::train::{mean_loss, run};
use synthsearch_model::{Stage, Trainer};
use tch::Device;

#[test]
fn tiny_model_learns_and_beats_chance() {
    synthsearch_model::set_threads(2);
    let data = common::data(400);
    let mut t = Trainer::new(common::model(1), common::train_config(80, 40), data.clone()).unwrap();
    let before = evaluate(t.model(), &data, 0).unwrap();
    let enc = run(&mut t, 80).unwrap();
    assert!(enc.iter().all(|r| r.stage == Stage::Encoder));
    let first = mean_loss(&enc[..20], "contrastive");
    let last = mean_loss(&enc[enc.len() - 20..], "contrastive");
    assert!(last < first * 0.8, "contrastive loss {first} -> {last}");

    let gan = run(&mut t, 40).unwrap();
    assert!(gan.iter().all(|r| r.stage == Stage::Gan));
    assert!(t.is_done());
    let l1_first = mean_loss(&gan[..10], "l1");
    let l1_last = mean_loss(&gan[gan.len() - 10..], "l1");
    assert!(l1_last < l1_first, "generator L1 {l1_first} -> {l1_last}");
    // E(G) moves toward the targets: the in-batch contrastive loss on it falls.
    let c_first = mean_loss(&gan[..10], "contrastive");
    let c_last = mean_loss(&gan[gan.len() - 10..], "contrastive");
    assert!(
        c_last < c_first,
        "contrastive loss on E(G) {c_first} -> {c_last}"
    );
    // The generated images' encoder activations move toward the targets' (perceptual loss).
    let f_first = mean_loss(&gan[..10], "feature");
    let f_last = mean_loss(&gan[gan.len() - 10..], "feature");
    assert!(f_first > 0.0, "the perceptual loss is on by default");
    assert!(f_last < f_first, "perceptual loss {f_first} -> {f_last}");
    for r in &gan {
        for (name, v) in &r.losses {
            assert!(v.is_finite(), "{name} = {v} at step {}", r.step);
        }
    }

    let after = evaluate(t.model(), &data, 0).unwrap();
    // Chance: K over the gallery size.
    let chance = 10.0 / after.mean_gallery;
    let comp = after.recall(Method::Composition, 10).unwrap();
    let gan_r = after.recall(Method::Gan, 10).unwrap();
    assert!(after.queries >= 50, "{} queries", after.queries);
    assert!(
        comp > 2.0 * chance,
        "composition R@10 {comp}, chance {chance}"
    );
    assert!(
        gan_r > chance,
        "GAN R@10 {gan_r}, chance {chance}\n{}",
        after.table()
    );
    assert!(
        comp > before.recall(Method::Composition, 10).unwrap(),
        "training did not help: {}",
        after.table()
    );
}

#[test]
fn resume_continues_where_it_left_off() {
    synthsearch_model::set_threads(1);
    let data = common::data(200);
    let cfg = common::train_config(3, 3);
    let mut straight = Trainer::new(common::model(5), cfg.clone(), data.clone()).unwrap();
    let all = run(&mut straight, 6).unwrap();

    let mut first = Trainer::new(common::model(5), cfg, data.clone()).unwrap();
    run(&mut first, 4).unwrap();
    let saved = first.save().unwrap();
    drop(first);
    let mut resumed = Trainer::resume(&saved, data, Device::Cpu).unwrap();
    assert_eq!(resumed.steps_done(), 4);
    assert_eq!(resumed.stage(), Stage::Gan);
    let rest = run(&mut resumed, 10).unwrap();
    assert_eq!(rest.len(), 2);
    for (a, b) in all[4..].iter().zip(&rest) {
        assert_eq!(a.step, b.step);
        for ((n, x), (_, y)) in a.losses.iter().zip(&b.losses) {
            assert!(
                (x - y).abs() <= 1e-4 * x.abs().max(1.0),
                "{n} at step {}: {x} vs {y}",
                a.step
            );
        }
    }
    assert_eq!(
        straight.model().generator_version().unwrap().len(),
        resumed.model().generator_version().unwrap().len()
    );
}

#[test]
fn retraining_the_gan_keeps_the_encoder_version() {
    synthsearch_model::set_threads(1);
    let data = common::data(200);
    let mut t = Trainer::new(common::model(2), common::train_config(3, 2), data.clone()).unwrap();
    run(&mut t, 5).unwrap();
    let model = t.into_model();
    let enc = model.encoder_version().unwrap();
    let gen_v = model.generator_version().unwrap();
    // A fresh generator draws from libtorch's global generator: under the lock, or it would race
    // with the other tests' seeded model initializations.
    let mut t = common::seeded(3, || {
        Trainer::retrain_gan(
            model,
            common::init().generator,
            common::train_config(0, 2),
            data,
        )
        .unwrap()
    });
    run(&mut t, 2).unwrap();
    assert_eq!(t.model().encoder_version().unwrap(), enc);
    assert_ne!(t.model().generator_version().unwrap(), gen_v);
}
