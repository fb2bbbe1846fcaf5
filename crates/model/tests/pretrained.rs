//! Parts a user brings: a TorchScript image encoder and fastText `.vec` word vectors.

mod common;

use std::io::Write;

use synthsearch_model::config::EncoderKind;
use synthsearch_model::train::run;
use synthsearch_model::{Model, ModelInit, Reference, Trainer, WordVectors};
use tch::Device;

const PYTHON: &str = "/opt/synthsearch/venv/bin/python";

#[test]
fn torchscript_encoder_loads_embeds_trains_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enc.pt");
    let script = format!(
        "import torch, torch.nn as nn\n\
         torch.manual_seed(0)\n\
         m = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 12))\n\
         torch.jit.script(m).save({:?})\n",
        path.display().to_string()
    );
    let python = if std::path::Path::new(PYTHON).exists() {
        PYTHON
    } else {
        "python3"
    };
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(&script)
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        other => panic!("python with torch is needed to write the test module: {other:?}"),
    }
    let mut init = common::init();
    init.encoder.kind = EncoderKind::TorchScript {
        imagenet_norm: true,
    };
    init.script = Some(std::fs::read(&path).unwrap());
    let m = common::seeded(0, || Model::new(init, Device::Cpu).unwrap());
    assert_eq!(m.embed_dim(), 12, "the module decides the embedding size");
    let img = vec![0.25f32; 3 * common::SIZE * common::SIZE];
    let e = m.encode_images(&img, 1).unwrap();
    assert_eq!(e.len(), 12);
    let back = Model::from_bytes(&m.to_bytes().unwrap(), Device::Cpu).unwrap();
    assert_eq!(back.encode_images(&img, 1).unwrap(), e);
    assert_eq!(
        back.encoder_version().unwrap(),
        m.encoder_version().unwrap()
    );

    // Stage 1 trains only the text side and leaves the user's encoder alone.
    let data = common::data(200);
    let mut t = Trainer::new(back, common::train_config(2, 2), data).unwrap();
    run(&mut t, 4).unwrap();
    assert_eq!(t.model().encode_images(&img, 1).unwrap(), e);
    let g = t
        .model()
        .generate(Reference::Image(&img), "is blue", None)
        .unwrap();
    assert_eq!(g.embedding.len(), 12);

    // Garbage instead of a module is a clear error.
    let mut init = common::init();
    init.encoder.kind = EncoderKind::TorchScript {
        imagenet_norm: false,
    };
    init.script = Some(b"not a module".to_vec());
    let err = common::seeded(0, || Model::new(init, Device::Cpu).unwrap_err());
    assert!(err.to_string().contains("TorchScript"), "{err}");
}

#[test]
fn fasttext_vectors_are_used_and_kept_in_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.vec");
    let mut f = std::fs::File::create(&path).unwrap();
    writeln!(f, "3 4\nred 1 0 0 0\nblack 0 1 0 0\nleather 0 0 1 0.5").unwrap();
    drop(f);
    let vectors = WordVectors::read_file(&path).unwrap();
    assert_eq!(vectors.words, ["red", "black", "leather"]);
    let init = ModelInit {
        word_vectors: Some(vectors),
        ..common::init()
    };
    let m = common::seeded(4, || Model::new(init, Device::Cpu).unwrap());
    assert_eq!(m.encoder_config().text.pretrained_dim, Some(4));
    let a = m.compose(Reference::None, "in black leather").unwrap();
    let back = Model::from_bytes(&m.to_bytes().unwrap(), Device::Cpu).unwrap();
    assert_eq!(
        back.compose(Reference::None, "in black leather").unwrap(),
        a
    );
    assert_eq!(
        back.encoder_version().unwrap(),
        m.encoder_version().unwrap()
    );

    let e = WordVectors::read_file(dir.path().join("missing.vec")).unwrap_err();
    assert!(e.to_string().contains("missing.vec"), "{e}");
}
