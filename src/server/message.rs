//! The messages between a backend and the model server: one request, one reply, each a flat
//! little-endian byte string carried whole by a `shm_mq` (which splits and joins long ones).
//! Nothing here knows PostgreSQL, so the format is tested with plain `cargo test`.

/// Which model a request is for: a model row of one database, at the versions the backend saw.
/// A model re-trained in place gets new versions and so a new key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ModelKey {
    pub database: u32,
    pub id: i64,
    pub encoder_version: String,
    pub generator_version: String,
}

/// A query's starting point, as the backend received it (images undecoded: the server decodes).
#[derive(Clone, Debug, PartialEq)]
pub enum Ref {
    None,
    Image(Vec<u8>),
    Embedding(Vec<f32>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// `synth_encode`: the image's embedding.
    Encode { key: ModelKey, image: Vec<u8> },
    /// `synth_encode_batch`: the embeddings of many images, in one forward pass per
    /// `server_max_batch` of them.
    EncodeBatch { key: ModelKey, images: Vec<Vec<u8>> },
    /// `synth_query` (and a bare synthquery literal): the synthesized image's embedding;
    /// with `png`, `synth_generate`: the image as PNG too.
    Generate {
        key: ModelKey,
        reference: Ref,
        text: String,
        png: bool,
    },
    /// `synth_walk_images`: the PNGs along the walk.
    Walk {
        key: ModelKey,
        from: (Ref, String),
        to: (Ref, String),
        points: u32,
    },
    /// The weights of a model the server does not hold yet, sent by the backend that needed it.
    Load {
        key: ModelKey,
        name: String,
        version: i32,
        weights: Vec<u8>,
    },
}

impl Request {
    pub fn key(&self) -> &ModelKey {
        match self {
            Request::Encode { key, .. }
            | Request::EncodeBatch { key, .. }
            | Request::Generate { key, .. }
            | Request::Walk { key, .. }
            | Request::Load { key, .. } => key,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    Embedding(Vec<f32>),
    Embeddings(Vec<Vec<f32>>),
    Image {
        png: Vec<u8>,
        embedding: Vec<f32>,
    },
    Images(Vec<Vec<u8>>),
    Loaded,
    /// The server does not hold the model: send `Request::Load`, then the request again.
    NeedModel,
    /// An ERROR for the backend to raise, with its SQLSTATE (PostgreSQL's packed form).
    Error {
        sqlstate: i32,
        message: String,
    },
}

#[derive(Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

// ---- writing ----------------------------------------------------------------------------------

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.0.extend_from_slice(v);
    }
    fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }
    fn floats(&mut self, v: &[f32]) {
        self.u32(v.len() as u32);
        for x in v {
            self.0.extend_from_slice(&x.to_le_bytes());
        }
    }
    fn key(&mut self, k: &ModelKey) {
        self.u32(k.database);
        self.i64(k.id);
        self.str(&k.encoder_version);
        self.str(&k.generator_version);
    }
    fn reference(&mut self, r: &Ref) {
        match r {
            Ref::None => self.u8(0),
            Ref::Image(b) => {
                self.u8(1);
                self.bytes(b);
            }
            Ref::Embedding(v) => {
                self.u8(2);
                self.floats(v);
            }
        }
    }
}

impl Request {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(64));
        match self {
            Request::Encode { key, image } => {
                w.u8(1);
                w.key(key);
                w.bytes(image);
            }
            Request::Generate {
                key,
                reference,
                text,
                png,
            } => {
                w.u8(2);
                w.key(key);
                w.reference(reference);
                w.str(text);
                w.u8(u8::from(*png));
            }
            Request::Walk {
                key,
                from,
                to,
                points,
            } => {
                w.u8(3);
                w.key(key);
                w.reference(&from.0);
                w.str(&from.1);
                w.reference(&to.0);
                w.str(&to.1);
                w.u32(*points);
            }
            Request::EncodeBatch { key, images } => {
                w.u8(5);
                w.key(key);
                w.u32(images.len() as u32);
                for i in images {
                    w.bytes(i);
                }
            }
            Request::Load {
                key,
                name,
                version,
                weights,
            } => {
                w.u8(4);
                w.key(key);
                w.str(name);
                w.i32(*version);
                w.bytes(weights);
            }
        }
        w.0
    }

    pub fn from_bytes(b: &[u8]) -> Result<Request, Malformed> {
        let mut r = Reader(b);
        let request = match r.u8()? {
            1 => Request::Encode {
                key: r.key()?,
                image: r.bytes()?,
            },
            2 => Request::Generate {
                key: r.key()?,
                reference: r.reference()?,
                text: r.str()?,
                png: r.u8()? != 0,
            },
            3 => Request::Walk {
                key: r.key()?,
                from: (r.reference()?, r.str()?),
                to: (r.reference()?, r.str()?),
                points: r.u32()?,
            },
            4 => Request::Load {
                key: r.key()?,
                name: r.str()?,
                version: r.i32()?,
                weights: r.bytes()?,
            },
            5 => {
                let key = r.key()?;
                let n = r.u32()? as usize;
                let mut images = Vec::with_capacity(n.min(4096));
                for _ in 0..n {
                    images.push(r.bytes()?);
                }
                Request::EncodeBatch { key, images }
            }
            _ => return Err(Malformed("unknown request kind")),
        };
        r.end()?;
        Ok(request)
    }
}

impl Reply {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(64));
        match self {
            Reply::Embedding(v) => {
                w.u8(1);
                w.floats(v);
            }
            Reply::Embeddings(all) => {
                w.u8(7);
                w.u32(all.len() as u32);
                for v in all {
                    w.floats(v);
                }
            }
            Reply::Image { png, embedding } => {
                w.u8(2);
                w.bytes(png);
                w.floats(embedding);
            }
            Reply::Images(images) => {
                w.u8(3);
                w.u32(images.len() as u32);
                for i in images {
                    w.bytes(i);
                }
            }
            Reply::Loaded => w.u8(4),
            Reply::NeedModel => w.u8(5),
            Reply::Error { sqlstate, message } => {
                w.u8(6);
                w.i32(*sqlstate);
                w.str(message);
            }
        }
        w.0
    }

    pub fn from_bytes(b: &[u8]) -> Result<Reply, Malformed> {
        let mut r = Reader(b);
        let reply = match r.u8()? {
            1 => Reply::Embedding(r.floats()?),
            2 => Reply::Image {
                png: r.bytes()?,
                embedding: r.floats()?,
            },
            3 => {
                let n = r.u32()? as usize;
                let mut images = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    images.push(r.bytes()?);
                }
                Reply::Images(images)
            }
            4 => Reply::Loaded,
            5 => Reply::NeedModel,
            6 => Reply::Error {
                sqlstate: r.i32()?,
                message: r.str()?,
            },
            7 => {
                let n = r.u32()? as usize;
                let mut all = Vec::with_capacity(n.min(4096));
                for _ in 0..n {
                    all.push(r.floats()?);
                }
                Reply::Embeddings(all)
            }
            _ => return Err(Malformed("unknown reply kind")),
        };
        r.end()?;
        Ok(reply)
    }
}

// ---- reading ----------------------------------------------------------------------------------

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Malformed> {
        if self.0.len() < n {
            return Err(Malformed("message ends early"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, Malformed> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn i32(&mut self) -> Result<i32, Malformed> {
        Ok(i32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn i64(&mut self) -> Result<i64, Malformed> {
        Ok(i64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn bytes(&mut self) -> Result<Vec<u8>, Malformed> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
    fn str(&mut self) -> Result<String, Malformed> {
        String::from_utf8(self.bytes()?).map_err(|_| Malformed("text is not UTF-8"))
    }
    fn floats(&mut self) -> Result<Vec<f32>, Malformed> {
        let n = self.u32()? as usize;
        let raw = self.take(n.checked_mul(4).ok_or(Malformed("too many values"))?)?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect())
    }
    fn key(&mut self) -> Result<ModelKey, Malformed> {
        Ok(ModelKey {
            database: self.u32()?,
            id: self.i64()?,
            encoder_version: self.str()?,
            generator_version: self.str()?,
        })
    }
    fn reference(&mut self) -> Result<Ref, Malformed> {
        Ok(match self.u8()? {
            0 => Ref::None,
            1 => Ref::Image(self.bytes()?),
            2 => Ref::Embedding(self.floats()?),
            _ => return Err(Malformed("unknown reference kind")),
        })
    }
    fn end(&self) -> Result<(), Malformed> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Malformed("trailing bytes"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ModelKey {
        ModelKey {
            database: 16384,
            id: -3,
            encoder_version: "enc-1".into(),
            generator_version: "gen-é".into(),
        }
    }

    #[test]
    fn every_message_reads_back_and_a_damaged_one_is_refused() {
        let requests = [
            Request::Encode {
                key: key(),
                image: vec![0x89, b'P', b'N', b'G'],
            },
            Request::Generate {
                key: key(),
                reference: Ref::None,
                text: "in black leather".into(),
                png: false,
            },
            Request::Generate {
                key: key(),
                reference: Ref::Embedding(vec![0.5, -1.0, f32::MIN_POSITIVE]),
                text: "is red".into(),
                png: true,
            },
            Request::Walk {
                key: key(),
                from: (Ref::Image(vec![1, 2, 3]), "is red".into()),
                to: (Ref::None, "is blue".into()),
                points: 8,
            },
            Request::EncodeBatch {
                key: key(),
                images: vec![vec![1, 2], vec![], vec![3]],
            },
            Request::Load {
                key: key(),
                name: "demo".into(),
                version: 2,
                weights: (0..=255).collect(),
            },
        ];
        for r in &requests {
            let b = r.to_bytes();
            assert_eq!(&Request::from_bytes(&b).unwrap(), r);
            assert!(Request::from_bytes(&b[..b.len() - 1]).is_err());
            let mut longer = b.clone();
            longer.push(0);
            assert_eq!(
                Request::from_bytes(&longer),
                Err(Malformed("trailing bytes"))
            );
        }
        let replies = [
            Reply::Embedding(vec![1.0, 2.0]),
            Reply::Image {
                png: vec![9; 10],
                embedding: vec![0.25],
            },
            Reply::Images(vec![vec![1], vec![], vec![2, 3]]),
            Reply::Embeddings(vec![vec![1.0], vec![], vec![0.5, -0.5]]),
            Reply::Loaded,
            Reply::NeedModel,
            Reply::Error {
                sqlstate: 12345,
                message: "invalid image: x".into(),
            },
        ];
        for r in &replies {
            let b = r.to_bytes();
            assert_eq!(&Reply::from_bytes(&b).unwrap(), r);
            assert!(Reply::from_bytes(&b[..b.len() - 1]).is_err());
        }
        assert!(Request::from_bytes(&[]).is_err());
        assert!(Request::from_bytes(&[9]).is_err());
        // A length that claims more than the message holds.
        let mut b = vec![1];
        b.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(Reply::from_bytes(&b).is_err());
    }
}
