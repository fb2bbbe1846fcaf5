//! The checkpoint container: self-describing bytes that the database stores.
//!
//! Layout: `SYNTHCKP` magic, format version (u32 LE), header length (u64 LE), the header as JSON
//! (architecture configs, versions, trainer state, and a length and FNV-1a checksum for every
//! section), then the sections back to back. Weight sections are libtorch's named-tensor archive.

use std::collections::HashMap;
use std::io::Cursor;

use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::config::{EncoderConfig, GeneratorConfig, TrainConfig};
use crate::error::{ModelError, Result};
use crate::rng::{fnv1a64, fnv1a64_extend};

pub const MAGIC: &[u8; 8] = b"SYNTHCKP";
/// Bumped whenever the layout or a parameter path changes.
pub const FORMAT_VERSION: u32 = 1;
/// Checkpoints larger than this are refused before parsing (4 GiB).
pub const MAX_CHECKPOINT_BYTES: usize = 4 << 30;

/// The embedding space's identity. Stored embeddings and indexes remember `version`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EncoderMeta {
    pub version: String,
    pub config: EncoderConfig,
}

/// The generator's identity, and the encoder version it was trained against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GeneratorMeta {
    pub version: String,
    pub encoder_version: String,
    pub config: GeneratorConfig,
    /// GAN steps trained so far (0: an untrained generator).
    pub steps: u64,
}

/// Where a training run stands, for resuming it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainerMeta {
    pub config: TrainConfig,
    pub step: u64,
    /// Adam step counts of the encoder, generator and critic optimizers.
    pub adam_steps: [u64; 3],
    /// Identity of the training data (sizes and a hash of ids and pairs).
    pub data: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SectionInfo {
    pub name: String,
    pub len: u64,
    pub fnv1a64: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub format: u32,
    pub encoder: EncoderMeta,
    pub generator: GeneratorMeta,
    pub trainer: Option<TrainerMeta>,
    pub sections: Vec<SectionInfo>,
}

/// Writes the header and sections; fills in the section table.
pub fn write(mut header: Header, sections: &[(&str, Vec<u8>)]) -> Result<Vec<u8>> {
    header.format = FORMAT_VERSION;
    header.sections = sections
        .iter()
        .map(|(name, b)| SectionInfo {
            name: name.to_string(),
            len: b.len() as u64,
            fnv1a64: format!("{:016x}", fnv1a64(b)),
        })
        .collect();
    let json = serde_json::to_vec(&header)
        .map_err(|e| ModelError::Config(format!("cannot serialize the header: {e}")))?;
    let total = 20 + json.len() + sections.iter().map(|(_, b)| b.len()).sum::<usize>();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    for (_, b) in sections {
        out.extend_from_slice(b);
    }
    Ok(out)
}

/// Parses and verifies the container; returns the header and the sections by name.
pub fn read(bytes: &[u8]) -> Result<(Header, HashMap<String, &[u8]>)> {
    let corrupt = |m: String| ModelError::Corrupt(m);
    if bytes.len() > MAX_CHECKPOINT_BYTES {
        return Err(corrupt(format!(
            "{} bytes is more than the limit of {MAX_CHECKPOINT_BYTES}",
            bytes.len()
        )));
    }
    if bytes.len() < 20 || &bytes[..8] != MAGIC {
        return Err(corrupt(format!(
            "{} bytes that do not start with the synthsearch checkpoint magic",
            bytes.len()
        )));
    }
    let format = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if format != FORMAT_VERSION {
        return Err(ModelError::UnsupportedFormat {
            found: format,
            supported: FORMAT_VERSION,
        });
    }
    let hlen = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let hend = 20usize
        .checked_add(usize::try_from(hlen).unwrap_or(usize::MAX))
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| {
            corrupt(format!(
                "header length {hlen} runs past the end ({} bytes)",
                bytes.len()
            ))
        })?;
    let header: Header = serde_json::from_slice(&bytes[20..hend])
        .map_err(|e| corrupt(format!("header is not valid: {e}")))?;
    let mut sections = HashMap::new();
    let mut at = hend;
    for s in &header.sections {
        let end = at
            .checked_add(usize::try_from(s.len).unwrap_or(usize::MAX))
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| corrupt(format!("section {:?} is truncated", s.name)))?;
        let body = &bytes[at..end];
        if format!("{:016x}", fnv1a64(body)) != s.fnv1a64 {
            return Err(corrupt(format!("section {:?} fails its checksum", s.name)));
        }
        sections.insert(s.name.clone(), body);
        at = end;
    }
    if at != bytes.len() {
        return Err(corrupt(format!(
            "{} trailing bytes after the last section",
            bytes.len() - at
        )));
    }
    Ok((header, sections))
}

/// Named tensors to libtorch's archive bytes (moved to the CPU first).
pub fn tensors_to_bytes(named: &[(String, Tensor)]) -> Result<Vec<u8>> {
    let cpu: Vec<(String, Tensor)> = named
        .iter()
        .map(|(n, t)| (n.clone(), t.to_device(Device::Cpu)))
        .collect();
    // libtorch wants a 'static writer: share the buffer and take it back afterwards.
    let buf = SharedBuf::default();
    Tensor::save_multi_to_stream(&cpu, buf.clone())?;
    let out = std::mem::take(&mut *buf.0.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(out)
}

#[derive(Clone, Default)]
struct SharedBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn tensors_from_bytes(
    bytes: &[u8],
    device: Device,
    section: &str,
) -> Result<HashMap<String, Tensor>> {
    let named = Tensor::load_multi_from_stream_with_device(Cursor::new(bytes.to_vec()), device)
        .map_err(|e| {
            ModelError::Corrupt(format!("section {section:?} is not a tensor archive: {e}"))
        })?;
    Ok(named.into_iter().collect())
}

/// A var store's variables, sorted by path.
pub fn variables(vs: &VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Copies `named` into the var store: every variable must be there with its shape, and nothing else.
pub fn load_into(vs: &VarStore, mut named: HashMap<String, Tensor>, section: &str) -> Result<()> {
    for (name, mut var) in variables(vs) {
        let src = named.remove(&name).ok_or_else(|| {
            ModelError::Mismatch(format!("section {section:?} lacks parameter {name:?}"))
        })?;
        if src.size() != var.size() {
            return Err(ModelError::Mismatch(format!(
                "parameter {name:?} has shape {:?} in the checkpoint, the model expects {:?}",
                src.size(),
                var.size()
            )));
        }
        tch::no_grad(|| var.f_copy_(&src.to_kind(var.kind())))?;
    }
    if let Some(extra) = named.keys().min() {
        return Err(ModelError::Mismatch(format!(
            "section {section:?} has parameter {extra:?} that the model does not know"
        )));
    }
    Ok(())
}

/// A content hash of weights (names, shapes and values), the basis of version ids.
pub fn weights_hash(seed: u64, named: &[(String, Tensor)]) -> Result<u64> {
    let mut h = seed;
    for (name, t) in named {
        h = fnv1a64_extend(h, name.as_bytes());
        for d in t.size() {
            h = fnv1a64_extend(h, &d.to_le_bytes());
        }
        let flat = t.to_device(Device::Cpu).to_kind(Kind::Float).flatten(0, -1);
        let v: Vec<f32> = Vec::<f32>::try_from(&flat)?;
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        h = fnv1a64_extend(h, &bytes);
    }
    Ok(h)
}
