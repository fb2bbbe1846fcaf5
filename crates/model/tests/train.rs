//! Trains a tiny model with a fixed seed: losses move the right way, recall beats chance, and a
//! run stopped and resumed from its checkpoint continues exactly.

mod common;

use synthsearch_data::Split;
use synthsearch_model::eval::{Method, evaluate};
use synthsearch_model::train::{StepReport, mean_loss, run};
use synthsearch_model::{Stage, Trainer};
use tch::Device;

#[test]
fn tiny_model_learns_and_beats_chance() {
    let _threads = common::threads(2);
    let data = common::data(400);
    let mut t = Trainer::new(common::model(1), common::train_config(80, 40), data.clone()).unwrap();
    let before = evaluate(t.model(), &data, Split::Val, 0, None).unwrap();
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

    let after = evaluate(t.model(), &data, Split::Val, 0, None).unwrap();
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

/// A resumed run's steps repeat the uninterrupted run's: same steps, same losses by name.
fn assert_same_steps(straight: &[StepReport], resumed: &[StepReport]) {
    assert_eq!(straight.len(), resumed.len());
    for (a, b) in straight.iter().zip(resumed) {
        assert_eq!(a.step, b.step);
        assert_eq!(a.losses.len(), b.losses.len());
        for ((n, x), (m, y)) in a.losses.iter().zip(&b.losses) {
            assert_eq!(n, m);
            assert!(
                (x - y).abs() <= 1e-4 * x.abs().max(1.0),
                "{n} at step {}: {x} vs {y}",
                a.step
            );
        }
    }
}

#[test]
fn resume_continues_where_it_left_off() {
    let _threads = common::threads(1);
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
    assert_same_steps(&all[4..], &rest);
    assert_eq!(
        straight.model().generator_version().unwrap().len(),
        resumed.model().generator_version().unwrap().len()
    );

    // Stopped in stage 1: the attribute probes, their optimizer and the wish loss's catalog bank
    // are saved with the run, so stage 1 resumes exactly too.
    let mut cfg = common::train_config(6, 2);
    cfg.wish_bank_every = 2;
    let data = common::data(200);
    let mut straight = Trainer::new(common::model(6), cfg.clone(), data.clone()).unwrap();
    let all = run(&mut straight, 8).unwrap();
    assert!(
        all[..6]
            .iter()
            .all(|r| r.loss("attributes").is_some() && r.loss("wish").is_some())
    );
    let mut first = Trainer::new(common::model(6), cfg, data.clone()).unwrap();
    run(&mut first, 3).unwrap();
    let saved = first.save().unwrap();
    let mut resumed = Trainer::resume(&saved, data, Device::Cpu).unwrap();
    assert_eq!(resumed.stage(), Stage::Encoder);
    let rest = run(&mut resumed, 10).unwrap();
    assert_eq!(rest.len(), 5);
    assert_same_steps(&all[3..], &rest);

    // The probes on E(G) in stage 2: frozen, saved with the run, and a run stopped in stage 2
    // resumes exactly.
    let mut cfg = common::train_config(3, 3);
    cfg.gan_attribute_weight = 1.0;
    let data = common::data(200);
    let mut straight = Trainer::new(common::model(7), cfg.clone(), data.clone()).unwrap();
    let all = run(&mut straight, 6).unwrap();
    assert!(all[3..].iter().all(|r| {
        r.loss("attributes")
            .is_some_and(|a| a.is_finite() && a > 0.0)
    }));
    let mut first = Trainer::new(common::model(7), cfg, data.clone()).unwrap();
    run(&mut first, 4).unwrap();
    let saved = first.save().unwrap();
    let mut resumed = Trainer::resume(&saved, data, Device::Cpu).unwrap();
    assert_eq!(resumed.stage(), Stage::Gan);
    let rest = run(&mut resumed, 10).unwrap();
    assert_eq!(rest.len(), 2);
    assert_same_steps(&all[4..], &rest);
}

#[test]
fn retraining_the_gan_keeps_the_encoder_version() {
    let _threads = common::threads(1);
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

/// A catalog with attribute values and no relative captions: pairs are formed from the values,
/// the wish loss trains, and the headline wishes measure how much of a page honours the wish.
#[test]
fn pairs_from_attributes_train_the_wish_and_are_measured() {
    use synthsearch_model::{WishEvalConfig, evaluate_wishes};

    let _threads = common::threads(2);
    #[allow(clippy::arc_with_non_send_sync)]
    let data = std::sync::Arc::new(common::attribute_data(7, 400, [0.6, 0.4, 0.0], 20_000));
    // Far more pairs than the catalog's own 0.5 a product, every one with a wish its target
    // honours (same category, the asked values) and its candidate does not.
    assert!(data.train.len() > 1_000, "{} pairs", data.train.len());
    assert!(!data.val.is_empty());
    for p in data.train.iter().chain(&data.val) {
        assert!(matches!(p.wish.len(), 1 | 2), "{p:?}");
        assert!(data.honours(p.target, &p.wish, Some(p.candidate)));
        assert!(!data.honours(p.candidate, &p.wish, Some(p.candidate)));
    }
    // The wish loss's near misses meet every condition of the query but one: none honours the
    // wish, and each either has every wished value in another category or the category and all
    // but one wished value.
    let (mut elsewhere, mut missing_a_value) = (0, 0);
    for p in data.train.iter().take(200) {
        let near = data.near_misses(&p.wish, Some(p.candidate));
        assert!(!near.is_empty(), "{p:?}");
        let category = |i: usize| data.category_codes[i];
        for &i in &near {
            assert!(!data.honours(i, &p.wish, Some(p.candidate)), "{i} {p:?}");
            let values_met = p
                .wish
                .iter()
                .filter(|&&cv| data.honours(i, &[cv], None))
                .count();
            let in_category = category(i) == category(p.candidate);
            assert_eq!(
                values_met + usize::from(in_category),
                p.wish.len(),
                "{i} {p:?}"
            );
            if in_category {
                missing_a_value += 1;
            } else {
                elsewhere += 1;
            }
        }
    }
    assert!(elsewhere > 0 && missing_a_value > 0);
    // Text only, one value: every other product misses by its one condition, so none is near.
    let one = data.train.iter().find(|p| p.wish.len() == 1).unwrap();
    assert!(data.near_misses(&one.wish, None).is_empty());
    // Weighing the near misses only adds to the softmax's denominator: from the same weights and
    // the same batch, the first step's wish loss is higher with it, in each stage.
    for (encoder_steps, gan_steps) in [(1, 0), (0, 1)] {
        let first_wish = |near_miss: f64| {
            let cfg = synthsearch_model::TrainConfig {
                wish_near_miss_weight: near_miss,
                ..common::train_config(encoder_steps, gan_steps)
            };
            let mut t = Trainer::new(common::model(3), cfg, data.clone()).unwrap();
            run(&mut t, 1).unwrap()[0].loss("wish").unwrap()
        };
        let (off, on) = (first_wish(0.0), first_wish(3.0));
        assert!(off.is_finite() && on.is_finite());
        assert!(
            on > off + 1e-3,
            "stage of {encoder_steps}/{gan_steps}: {off} -> {on}"
        );
    }

    let wish_cfg = WishEvalConfig::default();
    let mut t = Trainer::new(common::model(3), common::train_config(80, 20), data.clone()).unwrap();
    let before = evaluate_wishes(t.model(), &data, &wish_cfg, None, None)
        .unwrap()
        .expect("the data has attributes");
    let enc = run(&mut t, 80).unwrap();
    let first = mean_loss(&enc[..20], "wish");
    let last = mean_loss(&enc[enc.len() - 20..], "wish");
    assert!(
        first > 0.0 && last < first * 0.8,
        "wish loss {first} -> {last}"
    );
    let gan = run(&mut t, 20).unwrap();
    assert!(
        gan.iter()
            .all(|r| r.loss("wish").is_some_and(f64::is_finite))
    );
    // E(G) learns the composition's ranking of the catalog.
    assert!(
        gan.iter()
            .all(|r| r.loss("distill").is_some_and(|d| d.is_finite() && d >= 0.0))
    );
    // The data has a colour column: the colour loss reads the generated pixels.
    assert!(
        gan.iter()
            .filter_map(|r| r.loss("colour"))
            .all(|c| c.is_finite() && c >= 0.0)
    );
    assert!(gan.iter().filter(|r| r.loss("colour").is_some()).count() > 10);

    // Read by a judge trained on held-out real images only.
    let judge = synthsearch_model::held_out_judge(
        &data,
        &synthsearch_model::JudgeConfig {
            steps: 150,
            ..Default::default()
        },
        Device::Cpu,
    )
    .unwrap()
    .expect("the data has attributes and held-out images");
    let after = evaluate_wishes(t.model(), &data, &wish_cfg, Some(&judge), None)
        .unwrap()
        .unwrap();
    let p = |r: &synthsearch_model::WishReport, m| r.precision(m).unwrap();
    assert!(after.all.queries_with_image > 100 && after.all.queries_text_only > 20);
    // Ranked over the held-out images alone, never a training image.
    assert_eq!(after.gallery, data.images_in(Split::Val).len());
    assert!(after.gallery < data.len());
    // No reference already has what its wish asks (those are left out and counted), each
    // figure has its ceiling, and a shopper's words are a group of their own.
    assert!(after.left_out > 0);
    for m in [Method::Gan, Method::Composition, Method::TextOnly] {
        let (pr, c) = (p(&after, m), after.all.ceiling(m));
        assert!(
            c > 0.0 && c <= 1.0 && pr <= c + 1e-9,
            "{m:?}: {pr} over ceiling {c}"
        );
    }
    assert!(after.unseen_words.queries_with_image > 0 && after.seen_words.queries_with_image > 0);
    // Training on wishes raises the share of held-out pages that honour them (by half at least,
    // in 80 steps of a tiny model), and the wish matters: the composition beats ranking by the
    // reference image alone.
    assert!(
        p(&after, Method::Composition) > p(&before, Method::Composition) * 1.5,
        "before\n{}\nafter\n{}",
        before.table(),
        after.table()
    );
    assert!(
        p(&after, Method::Composition) > p(&after, Method::ImageOnly),
        "{}",
        after.table()
    );
    assert!(p(&after, Method::TextOnly) > p(&before, Method::TextOnly));
    let fidelity = after.fidelity.as_ref().expect("the judge read the images");
    assert!((0.0..=1.0).contains(&fidelity.with_image));
    // The judge reads every column and the category, and reads real held-out images it never
    // trained on well above chance (13 colours).
    assert_eq!(
        fidelity.by_attribute.len(),
        7,
        "{:?}",
        fidelity.by_attribute
    );
    let colour = fidelity
        .by_attribute
        .iter()
        .find(|a| a.0 == "colour")
        .unwrap();
    assert!(colour.2 > 0.3, "{:?}", fidelity.by_attribute);
    assert!(
        after
            .wishes
            .iter()
            .any(|w| w.asked == "colour=black, material=leather")
    );
}

/// Training is inductive: no loss looks at a held-out image or its labels. Two catalogs that
/// differ only in their held-out products (pixels replaced by noise, attribute values changed)
/// train to the same losses, step for step, with every catalog-wide loss on (wish keys and
/// bank, positives and near misses, probes, catalog contrastive, distillation, colour).
#[test]
fn held_out_images_and_labels_never_shape_training() {
    use synthsearch_model::{AttributeTable, Dataset};

    let _threads = common::threads(2);
    let a = common::attribute_data(11, 300, [0.6, 0.2, 0.2], 5_000);
    let held: Vec<usize> = (0..a.len())
        .filter(|&i| a.splits[i] != Split::Train)
        .collect();
    assert!(held.len() > 60 && !a.val.is_empty() && !a.test.is_empty());
    // The other catalog: every held-out image noise, every held-out value another one.
    let images = a.images.copy();
    for &i in &held {
        images.get(i as i64).copy_(
            &(tch::Tensor::rand(
                [3, common::SIZE as i64, common::SIZE as i64],
                (tch::Kind::Float, Device::Cpu),
            ) * 2.0
                - 1.0),
        );
    }
    let t = a.attributes.as_ref().unwrap();
    let mut codes = t.codes.clone();
    let cols = t.columns.len();
    for &i in &held {
        for c in 0..cols {
            let n = t.values[c].len() as u32;
            codes[i * cols + c] = (codes[i * cols + c] + 1) % n;
        }
    }
    let b = Dataset {
        images,
        attributes: Some(AttributeTable {
            columns: t.columns.clone(),
            values: t.values.clone(),
            codes,
        }),
        ids: a.ids.clone(),
        categories: a.categories.clone(),
        splits: a.splits.clone(),
        train: a.train.clone(),
        val: a.val.clone(),
        test: a.test.clone(),
        category_codes: a.category_codes.clone(),
        image_size: a.image_size,
        dropped_pairs: 0,
    };
    let cfg = synthsearch_model::TrainConfig {
        wish_bank_every: 5,
        contrastive_catalog: true,
        distill_weight: 0.5,
        ..common::train_config(12, 8)
    };
    assert!(cfg.wish_weight > 0.0 && cfg.attribute_weight > 0.0 && cfg.colour_weight > 0.0);
    #[allow(clippy::arc_with_non_send_sync)]
    let run_on = |d: Dataset| {
        let mut t = Trainer::new(common::model(5), cfg.clone(), std::sync::Arc::new(d)).unwrap();
        run(&mut t, 20).unwrap()
    };
    let (ra, rb) = (run_on(a), run_on(b));
    for name in ["wish", "attributes", "colour", "distill", "contrastive"] {
        assert!(
            ra.iter().any(|r| r.loss(name).is_some()),
            "{name} never ran"
        );
    }
    assert_same_steps(&ra, &rb);
}

/// The ablation's head trains beside the generator without changing it (the GAN's losses are
/// the same with and without it), learns (its loss falls), and is ranked beside the GAN.
#[test]
fn the_ablation_head_trains_beside_the_gan_without_changing_it() {
    let _threads = common::threads(2);
    let data = common::data(300);
    let run_with = |head: bool| {
        let cfg = synthsearch_model::TrainConfig {
            ablation_head: head,
            ..common::train_config(30, 40)
        };
        let mut t = Trainer::new(common::model(4), cfg, data.clone()).unwrap();
        let steps = run(&mut t, 70).unwrap();
        (t, steps)
    };
    let (plain, plain_steps) = run_with(false);
    let (with, with_steps) = run_with(true);
    assert!(plain.ablation_head().is_none());
    let head = with.ablation_head().expect("made in stage 2");
    assert!(head.parameters() > 0);
    let head_loss: Vec<f64> = with_steps
        .iter()
        .filter_map(|r| r.loss("ablation_head"))
        .collect();
    assert_eq!(head_loss.len(), 40);
    let k = 10;
    let (first, last) = (
        head_loss[..k].iter().sum::<f64>(),
        head_loss[head_loss.len() - k..].iter().sum::<f64>(),
    );
    assert!(last < first, "head loss {first} -> {last}");
    // Same GAN, step for step, once the head's own loss is set aside.
    let without_head: Vec<StepReport> = with_steps
        .iter()
        .map(|r| StepReport {
            losses: r
                .losses
                .iter()
                .filter(|(n, _)| *n != "ablation_head")
                .cloned()
                .collect(),
            ..r.clone()
        })
        .collect();
    assert_same_steps(&plain_steps, &without_head);
    let r = evaluate(with.model(), &data, Split::Val, 0, Some(head)).unwrap();
    for m in [Method::Head, Method::HeadTextOnly, Method::Gan] {
        let v = r.recall(m, 10).unwrap();
        assert!((0.0..=1.0).contains(&v), "{m:?} {v}");
    }
}

#[test]
fn the_gradient_penalty_runs_every_gp_every_steps() {
    // A training configuration written before the switch existed reads as every step.
    let mut old = serde_json::to_value(synthsearch_model::TrainConfig::default()).unwrap();
    old.as_object_mut().unwrap().remove("gp_every");
    let old: synthsearch_model::TrainConfig = serde_json::from_value(old).unwrap();
    assert_eq!(old.gp_every, 1);
    assert_eq!(synthsearch_model::TrainConfig::default().gp_every, 4);
    for bad in [0, 65] {
        let cfg = synthsearch_model::TrainConfig {
            gp_every: bad,
            ..common::train_config(0, 1)
        };
        let e = cfg.validate().unwrap_err();
        assert!(e.to_string().contains("gp_every"), "{e}");
    }

    let _threads = common::threads(2);
    let data = common::data(120);
    let cfg = synthsearch_model::TrainConfig {
        gp_every: 3,
        ..common::train_config(0, 7)
    };
    let mut t = Trainer::new(common::model(5), cfg, data).unwrap();
    let gan = run(&mut t, 7).unwrap();
    let with_gp: Vec<u64> = gan
        .iter()
        .filter(|r| r.losses.iter().any(|(n, _)| *n == "gp"))
        .map(|r| r.step)
        .collect();
    // GAN steps 0, 3 and 6 (steps 1, 4 and 7 of the run) compute it.
    assert_eq!(with_gp, vec![1, 4, 7]);
    for r in &gan {
        let critic = r.losses.iter().find(|(n, _)| *n == "critic").unwrap().1;
        assert!(
            critic.is_finite(),
            "critic loss {critic} at step {}",
            r.step
        );
    }
}

#[test]
fn expanded_losses_rank_the_catalog_by_the_search_embedding() {
    // Off by default, and for configurations written before the switch existed.
    assert!(!synthsearch_model::TrainConfig::default().expanded_losses);
    let mut old = serde_json::to_value(synthsearch_model::TrainConfig::default()).unwrap();
    old.as_object_mut().unwrap().remove("expanded_losses");
    let old: synthsearch_model::TrainConfig = serde_json::from_value(old).unwrap();
    assert!(!old.expanded_losses);

    let _threads = common::threads(2);
    let data = common::data(120);
    let losses = |expanded: bool, expansion: f64| {
        let mut m = common::model(6);
        m.set_query_expansion(expansion).unwrap();
        let cfg = synthsearch_model::TrainConfig {
            expanded_losses: expanded,
            ..common::train_config(0, 3)
        };
        let mut t = Trainer::new(m, cfg, data.clone()).unwrap();
        let reports = run(&mut t, 3).unwrap();
        // The first step's ranking losses: before any update, so only what they rank by differs.
        let first = &reports[0];
        ["contrastive", "distill"].map(|k| first.losses.iter().find(|(n, _)| *n == k).unwrap().1)
    };
    let plain = losses(false, 1.0);
    let expanded = losses(true, 1.0);
    for (p, e) in plain.iter().zip(&expanded) {
        assert!(p.is_finite() && e.is_finite(), "{plain:?} {expanded:?}");
    }
    assert!(
        (plain[0] - expanded[0]).abs() > 1e-4,
        "the contrastive loss did not change: {plain:?} {expanded:?}"
    );
    // Without an expansion there is nothing to expand by: the same losses as without the switch.
    let none = losses(true, 0.0);
    let plain_none = losses(false, 0.0);
    for (a, b) in none.iter().zip(&plain_none) {
        assert!((a - b).abs() < 1e-9, "{none:?} {plain_none:?}");
    }
}

/// A time limit may end stage 1 early: the next step is a GAN step, the plan shrinks by the steps
/// not taken, the GAN stage keeps its own, and a call after stage 1 changes nothing.
#[test]
fn stage_one_ends_early_and_the_gan_stage_keeps_its_steps() {
    let _threads = common::threads(2);
    let data = common::data(200);
    let mut t = Trainer::new(common::model(3), common::train_config(20, 6), data).unwrap();
    assert_eq!(t.total_steps(), 26);
    let enc = run(&mut t, 5).unwrap();
    assert!(enc.iter().all(|r| r.stage == Stage::Encoder));
    t.end_encoder_stage();
    assert_eq!(t.config().encoder_steps, 5);
    assert_eq!(t.total_steps(), 11);
    assert_eq!(t.stage(), Stage::Gan);
    let gan = run(&mut t, 6).unwrap();
    assert!(
        gan.iter().all(|r| r.stage == Stage::Gan),
        "{:?}",
        gan.iter().map(|r| r.stage).collect::<Vec<_>>()
    );
    for r in &gan {
        for (name, v) in &r.losses {
            assert!(v.is_finite(), "{name} = {v} at step {}", r.step);
        }
    }
    assert!(t.is_done());
    assert_eq!(t.model().gan_steps(), 6);
    t.end_encoder_stage();
    assert_eq!(
        t.config().encoder_steps,
        5,
        "stage 1 is over: nothing changes"
    );
}
