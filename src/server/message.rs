//! The messages between a backend and the model server: one request, one reply, each a flat
//! little-endian byte string. A reply goes whole through its `shm_mq`; a request goes as a header
//! (its kind and length) and then pieces of at most [`PIECE_BYTES`], so the server checks the
//! length against its limit before it reads (or allocates) any of it: `shm_mq_receive` joins a
//! message whole, in memory of the message's size, before the receiver sees a byte.
//! Nothing here knows PostgreSQL, so the format is tested with plain `cargo test`.

use super::{MAX_MODEL_BYTES, MAX_REQUEST_BYTES};

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
    /// The weights of a model the server does not hold yet, sent by the backend that needed it,
    /// with the request it needed them for: the server answers that request right after loading,
    /// so a request is served however many models other connections make it load and evict.
    Load {
        key: ModelKey,
        name: String,
        version: i32,
        weights: Vec<u8>,
        request: Box<Request>,
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

    /// The most bytes a request of `kind` (its first byte) may have: a Load holds a model's
    /// weights and a request, with as much again for its key and name.
    pub fn limit(kind: u8) -> usize {
        if kind == LOAD {
            MAX_MODEL_BYTES + 2 * MAX_REQUEST_BYTES
        } else {
            MAX_REQUEST_BYTES
        }
    }
}

/// The length of an `EncodeBatch` request's bytes, without making it.
pub fn encode_batch_len(key: &ModelKey, images: &[Vec<u8>]) -> usize {
    1 + 4
        + 8
        + 4
        + key.encoder_version.len()
        + 4
        + key.generator_version.len()
        + 4
        + images.iter().map(|i| 4 + i.len()).sum::<usize>()
}

const LOAD: u8 = 4;

/// Bytes of one piece of a request on its queue (a quarter of the queue: a piece that wraps
/// around the ring is copied into a buffer of its own size, not the message's).
pub const PIECE_BYTES: usize = 64 * 1024;
/// Bytes of a request's header: its kind, then its length (u64).
pub const HEADER_BYTES: usize = 9;

/// The header that goes before a request's pieces.
pub fn header(request: &[u8]) -> [u8; HEADER_BYTES] {
    let mut h = [0u8; HEADER_BYTES];
    h[0] = request.first().copied().unwrap_or(0);
    h[1..].copy_from_slice(&(request.len() as u64).to_le_bytes());
    h
}

/// Why the server refuses a request from its header.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    Malformed(Malformed),
    /// Longer than the limit of its kind: nothing of it is read.
    TooLarge {
        len: u64,
        max: usize,
    },
    /// Within the limit, but the server cannot allocate it now (many loads at once).
    NoMemory {
        len: u64,
    },
}

/// A request arriving in pieces. Its buffer is allocated once, at the length the header
/// announced, after that length was checked against the limit.
#[derive(Debug)]
pub struct Incoming {
    kind: u8,
    len: usize,
    data: Vec<u8>,
}

impl Incoming {
    /// Starts a request from its header.
    pub fn start(header: &[u8]) -> Result<Incoming, Refused> {
        let Ok(header) = <[u8; HEADER_BYTES]>::try_from(header) else {
            return Err(Refused::Malformed(Malformed("not a request header")));
        };
        let kind = header[0];
        let len = u64::from_le_bytes(header[1..].try_into().unwrap());
        let max = Request::limit(kind);
        if len > max as u64 {
            return Err(Refused::TooLarge { len, max });
        }
        if len == 0 {
            return Err(Refused::Malformed(Malformed("an empty request")));
        }
        // Fallible: a failed allocation is this request's error, never an abort of the server.
        let mut data = Vec::new();
        if data.try_reserve_exact(len as usize).is_err() {
            return Err(Refused::NoMemory { len });
        }
        Ok(Incoming {
            kind,
            len: len as usize,
            data,
        })
    }

    /// Adds the next piece; true once the request is whole.
    pub fn add(&mut self, piece: &[u8]) -> Result<bool, Malformed> {
        if piece.is_empty() || piece.len() > PIECE_BYTES || piece.len() > self.len - self.data.len()
        {
            return Err(Malformed("a piece longer than the request's rest"));
        }
        self.data.extend_from_slice(piece);
        Ok(self.data.len() == self.len)
    }

    /// The whole request, read.
    pub fn finish(self) -> Result<Request, Malformed> {
        if self.data.len() != self.len || self.data[0] != self.kind {
            return Err(Malformed("the request differs from its header"));
        }
        Request::from_vec(self.data)
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
    /// The server does not hold the model: send `Request::Load` with the request.
    NeedModel,
    /// An ERROR for the backend to raise as the server would have: its SQLSTATE (PostgreSQL's
    /// packed form), message, detail and hint; `image` is the position (from 1) in an
    /// `EncodeBatch` of the image it is about, 0 for none.
    Error {
        sqlstate: i32,
        message: String,
        detail: Option<String>,
        hint: Option<String>,
        image: u32,
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
    fn optional(&mut self, v: Option<&str>) {
        match v {
            None => self.u8(0),
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
        }
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
                request,
            } => {
                w.u8(LOAD);
                w.key(key);
                w.str(name);
                w.i32(*version);
                w.bytes(&request.to_bytes());
                // Last, so that reading takes them from the message without a second copy.
                w.bytes(weights);
            }
        }
        w.0
    }

    /// Reads a request, taking a Load's weights out of `b` without copying them.
    pub fn from_vec(mut b: Vec<u8>) -> Result<Request, Malformed> {
        if b.first() != Some(&LOAD) {
            return Request::from_bytes(&b);
        }
        let mut r = Reader(&b[1..]);
        let key = r.key()?;
        let name = r.str()?;
        let version = r.i32()?;
        // Checked before reading it: loads nested in loads would recurse as deep as they go.
        let inner = r.slice()?;
        if inner.first() == Some(&LOAD) {
            return Err(Malformed("a load inside a load"));
        }
        let request = Request::from_bytes(inner)?;
        let n = r.u32()? as usize;
        if r.0.len() < n {
            return Err(Malformed("message ends early"));
        }
        if r.0.len() > n {
            return Err(Malformed("trailing bytes"));
        }
        let start = b.len() - n;
        b.drain(..start);
        Ok(Request::Load {
            key,
            name,
            version,
            weights: b,
            request: Box::new(request),
        })
    }

    pub fn from_bytes(b: &[u8]) -> Result<Request, Malformed> {
        if b.first() == Some(&LOAD) {
            return Request::from_vec(b.to_vec());
        }
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
            Reply::NeedModel => w.u8(5),
            Reply::Error {
                sqlstate,
                message,
                detail,
                hint,
                image,
            } => {
                w.u8(6);
                w.i32(*sqlstate);
                w.str(message);
                w.optional(detail.as_deref());
                w.optional(hint.as_deref());
                w.u32(*image);
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
            5 => Reply::NeedModel,
            6 => Reply::Error {
                sqlstate: r.i32()?,
                message: r.str()?,
                detail: r.optional()?,
                hint: r.optional()?,
                image: r.u32()?,
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

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
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
    fn slice(&mut self) -> Result<&'a [u8], Malformed> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn bytes(&mut self) -> Result<Vec<u8>, Malformed> {
        Ok(self.slice()?.to_vec())
    }
    fn str(&mut self) -> Result<String, Malformed> {
        String::from_utf8(self.bytes()?).map_err(|_| Malformed("text is not UTF-8"))
    }
    fn optional(&mut self) -> Result<Option<String>, Malformed> {
        Ok(match self.u8()? {
            0 => None,
            1 => Some(self.str()?),
            _ => return Err(Malformed("unknown optional marker")),
        })
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
                request: Box::new(Request::Encode {
                    key: key(),
                    image: vec![7; 3],
                }),
            },
        ];
        for r in &requests {
            let b = r.to_bytes();
            if let Request::EncodeBatch { key, images } = r {
                assert_eq!(b.len(), encode_batch_len(key, images));
            }
            assert_eq!(&Request::from_bytes(&b).unwrap(), r);
            assert_eq!(&Request::from_vec(b.clone()).unwrap(), r);
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
            Reply::NeedModel,
            Reply::Error {
                sqlstate: 12345,
                message: "invalid image: x".into(),
                detail: None,
                hint: Some("try another".into()),
                image: 3,
            },
            Reply::Error {
                sqlstate: 1,
                message: String::new(),
                detail: Some("why".into()),
                hint: None,
                image: 0,
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

    #[test]
    fn a_load_inside_a_load_is_refused() {
        let inner = Request::Load {
            key: key(),
            name: "a".into(),
            version: 1,
            weights: vec![1],
            request: Box::new(Request::Encode {
                key: key(),
                image: vec![],
            }),
        };
        let outer = Request::Load {
            key: key(),
            name: "b".into(),
            version: 1,
            weights: vec![2],
            request: Box::new(inner),
        };
        assert_eq!(
            Request::from_bytes(&outer.to_bytes()),
            Err(Malformed("a load inside a load"))
        );
    }

    /// A request in pieces reads back; a header that announces more than the limit is refused
    /// before anything is allocated, and pieces that do not fit the header are refused.
    #[test]
    fn pieces_join_and_the_header_bounds_them() {
        let request = Request::EncodeBatch {
            key: key(),
            images: vec![vec![5; PIECE_BYTES + 10], vec![6; 3 * PIECE_BYTES]],
        };
        let b = request.to_bytes();
        let mut incoming = Incoming::start(&header(&b)).unwrap();
        let pieces: Vec<&[u8]> = b.chunks(PIECE_BYTES).collect();
        for (k, p) in pieces.iter().enumerate() {
            assert_eq!(incoming.add(p), Ok(k == pieces.len() - 1));
        }
        assert_eq!(incoming.finish().unwrap(), request);

        let mut h = header(&b);
        h[1..].copy_from_slice(&((MAX_REQUEST_BYTES + 1) as u64).to_le_bytes());
        assert_eq!(
            Incoming::start(&h).unwrap_err(),
            Refused::TooLarge {
                len: MAX_REQUEST_BYTES as u64 + 1,
                max: MAX_REQUEST_BYTES
            }
        );
        // A load may be as long as its limit, not a byte more; nothing is allocated
        // for a refused one (a u64::MAX length would abort the allocation).
        h[0] = LOAD;
        h[1..]
            .copy_from_slice(&((MAX_MODEL_BYTES + 2 * MAX_REQUEST_BYTES) as u64 + 1).to_le_bytes());
        assert!(matches!(Incoming::start(&h), Err(Refused::TooLarge { .. })));
        h[1..].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(Incoming::start(&h), Err(Refused::TooLarge { .. })));
        assert!(matches!(
            Incoming::start(&h[..5]),
            Err(Refused::Malformed(_))
        ));

        // Too much, a piece over the piece size, a kind that differs from the header's.
        let small = Request::Encode {
            key: key(),
            image: vec![1; 10],
        }
        .to_bytes();
        let mut incoming = Incoming::start(&header(&small)).unwrap();
        let mut longer = small.clone();
        longer.push(0);
        assert!(incoming.add(&longer).is_err());
        let mut incoming = Incoming::start(&header(&b)).unwrap();
        assert!(incoming.add(&b[..PIECE_BYTES + 1]).is_err());
        let mut h = header(&small);
        h[0] = 2;
        let mut incoming = Incoming::start(&h).unwrap();
        assert_eq!(incoming.add(&small), Ok(true));
        assert!(incoming.finish().is_err());
    }
}
