//! The on-page layout. Every page's usable area starts with a 16-byte header:
//!
//! | offset | field   | type | meaning                                            |
//! |--------|---------|------|----------------------------------------------------|
//! | 0      | magic   | u32  | [`MAGIC`]                                          |
//! | 4      | version | u16  | [`VERSION`]                                        |
//! | 6      | kind    | u16  | [`Kind`]                                           |
//! | 8      | count   | u16  | records on this page                               |
//! | 10     | -       | u16  | zero                                               |
//! | 12     | next    | u32  | next page of the same chain, or [`INVALID_BLOCK`]  |
//!
//! then fixed-size records from offset 16, record `i` at `16 + i * stride`; a record is addressed
//! by (block, slot). All integers and floats are little-endian.
//!
//! - Meta page (block 0): see [`crate::meta`].
//! - Directory pages (blocks 1..): one [`ListEntry`] per list, stride `32 + 4 * dims`:
//!   code_head u32, vec_head u32, live u32, dead u32, lo f32, step f32, free block u32, free slot
//!   u16, 2 bytes zero, centroid f32 x dims. (free block, free slot) is the first vector slot of
//!   the list's free chain, block 0 (the meta page) for none: indexes made before the chain have
//!   zeroes there.
//! - Code pages, chained per list from the directory's `code_head` (newest first), stride
//!   `round4(16 + dims)`: heap tid block u32, tid offset u16, vector slot u16, vector block u32,
//!   quantization error f32 (|x - decoded x|), code u8 x dims. Deleting compacts the page.
//! - Vector pages, chained per list from `vec_head`, stride `8 + 4 * dims`: tid block u32,
//!   tid offset u16, flags u16 ([`VEC_DEAD`], [`VEC_FREE`]), vector f32 x dims (normalized for
//!   cosine). A slot on the free chain ([`VEC_DEAD`] | [`VEC_FREE`]) holds the next free slot's
//!   block u32 and slot u16 where its tid was (block 0: the end), and as its first value's bytes
//!   the block of the code page its code was removed from.
//!
//! Chains grow at the head: a full head page gets a new page in front of it, so building and
//! inserting only ever write a list's head page and the directory. VACUUM puts the vector slots of
//! deleted rows on their list's free chain, and an insert into the list takes the chain's first
//! slot before it appends.

use crate::Tid;
use crate::relation::{INVALID_BLOCK, PAGE_AREA};
use std::borrow::Cow;

pub const MAGIC: u32 = 0x5359_4958;
pub const VERSION: u16 = 1;
pub const HEADER: usize = 16;
/// Flag on a vector record whose heap tuple was deleted.
pub const VEC_DEAD: u16 = 1;
/// Flag on a dead vector record that is on its list's free chain (with [`VEC_DEAD`]).
pub const VEC_FREE: u16 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Meta = 1,
    Directory = 2,
    Codes = 3,
    Vectors = 4,
}

impl Kind {
    pub fn from_u16(v: u16) -> Option<Kind> {
        match v {
            1 => Some(Kind::Meta),
            2 => Some(Kind::Directory),
            3 => Some(Kind::Codes),
            4 => Some(Kind::Vectors),
            _ => None,
        }
    }
}

#[inline]
pub fn get_u16(p: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([p[off], p[off + 1]])
}
#[inline]
pub fn get_u32(p: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(p[off..off + 4].try_into().unwrap())
}
#[inline]
pub fn get_u64(p: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(p[off..off + 8].try_into().unwrap())
}
#[inline]
pub fn get_f32(p: &[u8], off: usize) -> f32 {
    f32::from_le_bytes(p[off..off + 4].try_into().unwrap())
}
#[inline]
pub fn put_u16(p: &mut [u8], off: usize, v: u16) {
    p[off..off + 2].copy_from_slice(&v.to_le_bytes());
}
#[inline]
pub fn put_u32(p: &mut [u8], off: usize, v: u32) {
    p[off..off + 4].copy_from_slice(&v.to_le_bytes());
}
#[inline]
pub fn put_u64(p: &mut [u8], off: usize, v: u64) {
    p[off..off + 8].copy_from_slice(&v.to_le_bytes());
}
#[inline]
pub fn put_f32(p: &mut [u8], off: usize, v: f32) {
    p[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// `n` f32 values at `off`: borrowed in place when aligned on a little-endian machine, else copied.
#[inline]
pub fn get_f32s(p: &[u8], off: usize, n: usize) -> Cow<'_, [f32]> {
    let bytes = &p[off..off + 4 * n];
    if cfg!(target_endian = "little")
        && (bytes.as_ptr() as usize).is_multiple_of(std::mem::align_of::<f32>())
    {
        // Safety: the range is in bounds (sliced above), aligned for f32 (checked), every bit
        // pattern is a valid f32, and the borrow keeps the page alive and unmodified.
        return Cow::Borrowed(unsafe {
            std::slice::from_raw_parts(bytes.as_ptr() as *const f32, n)
        });
    }
    Cow::Owned(
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect(),
    )
}

#[inline]
pub fn put_f32s(p: &mut [u8], off: usize, v: &[f32]) {
    for (dst, x) in p[off..off + 4 * v.len()].chunks_exact_mut(4).zip(v) {
        dst.copy_from_slice(&x.to_le_bytes());
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub magic: u32,
    pub version: u16,
    pub kind: u16,
    pub count: u16,
    pub next: u32,
}

pub fn header(p: &[u8]) -> Header {
    Header {
        magic: get_u32(p, 0),
        version: get_u16(p, 4),
        kind: get_u16(p, 6),
        count: get_u16(p, 8),
        next: get_u32(p, 12),
    }
}

/// Zeroes the page and writes a fresh header.
pub fn init(p: &mut [u8], kind: Kind, next: u32) {
    p[..PAGE_AREA].fill(0);
    put_u32(p, 0, MAGIC);
    put_u16(p, 4, VERSION);
    put_u16(p, 6, kind as u16);
    put_u16(p, 8, 0);
    put_u32(p, 12, next);
}

pub fn set_count(p: &mut [u8], n: u16) {
    put_u16(p, 8, n);
}

/// The header of a page the caller expects to be of `kind`, or a panic naming the corruption.
pub fn expect(p: &[u8], blkno: u32, kind: Kind) -> Header {
    let h = header(p);
    if h.magic != MAGIC || h.version != VERSION || h.kind != kind as u16 {
        panic!(
            "data corruption: block {blkno} is not a {kind:?} page of this index (magic {:#x}, version {}, kind {})",
            h.magic, h.version, h.kind
        );
    }
    h
}

pub const fn dir_stride(dims: usize) -> usize {
    32 + 4 * dims
}
pub const fn code_stride(dims: usize) -> usize {
    (16 + dims).div_ceil(4) * 4
}
pub const fn vec_stride(dims: usize) -> usize {
    8 + 4 * dims
}
/// Records of `stride` bytes a page holds.
pub const fn capacity(stride: usize) -> usize {
    (PAGE_AREA - HEADER) / stride
}
#[inline]
pub const fn record(slot: usize, stride: usize) -> usize {
    HEADER + slot * stride
}

/// A list's directory record, without its centroid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ListEntry {
    pub code_head: u32,
    pub vec_head: u32,
    /// Live vectors in the list.
    pub live: u32,
    /// Vector slots whose tuples were deleted (on the free chain, or left off it by a crash).
    pub dead: u32,
    /// Quantizer: code c stands for residual lo + c * step, the same in every dimension.
    pub lo: f32,
    pub step: f32,
    /// The first slot of the list's free chain, (block, slot).
    pub free: Option<(u32, u16)>,
}

impl ListEntry {
    pub fn empty() -> ListEntry {
        ListEntry {
            code_head: INVALID_BLOCK,
            vec_head: INVALID_BLOCK,
            live: 0,
            dead: 0,
            lo: 0.0,
            step: 0.0,
            free: None,
        }
    }

    pub fn read(p: &[u8], off: usize) -> ListEntry {
        ListEntry {
            code_head: get_u32(p, off),
            vec_head: get_u32(p, off + 4),
            live: get_u32(p, off + 8),
            dead: get_u32(p, off + 12),
            lo: get_f32(p, off + 16),
            step: get_f32(p, off + 20),
            free: slot_link(p, off + 24),
        }
    }

    pub fn write(&self, p: &mut [u8], off: usize) {
        put_u32(p, off, self.code_head);
        put_u32(p, off + 4, self.vec_head);
        put_u32(p, off + 8, self.live);
        put_u32(p, off + 12, self.dead);
        put_f32(p, off + 16, self.lo);
        put_f32(p, off + 20, self.step);
        put_u64(p, off + 24, 0);
        put_slot_link(p, off + 24, self.free);
    }
}

/// Offset of a directory record's centroid from the record's start.
pub const CENTROID: usize = 32;
/// Offset of the code bytes within a code record.
pub const CODE: usize = 16;
/// Offset of the values within a vector record.
pub const VALUES: usize = 8;

/// A code record's fixed fields.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodeHead {
    pub tid: Tid,
    pub vec_block: u32,
    pub vec_slot: u16,
    pub error: f32,
}

impl CodeHead {
    #[inline]
    pub fn read(p: &[u8], off: usize) -> CodeHead {
        CodeHead {
            tid: Tid::new(get_u32(p, off), get_u16(p, off + 4)),
            vec_slot: get_u16(p, off + 6),
            vec_block: get_u32(p, off + 8),
            error: get_f32(p, off + 12),
        }
    }

    pub fn write(&self, p: &mut [u8], off: usize) {
        put_u32(p, off, self.tid.block);
        put_u16(p, off + 4, self.tid.offset);
        put_u16(p, off + 6, self.vec_slot);
        put_u32(p, off + 8, self.vec_block);
        put_f32(p, off + 12, self.error);
    }
}

/// Writes a vector record.
pub fn write_vector(p: &mut [u8], off: usize, tid: Tid, values: &[f32]) {
    put_u32(p, off, tid.block);
    put_u16(p, off + 4, tid.offset);
    put_u16(p, off + 6, 0);
    put_f32s(p, off + VALUES, values);
}

pub fn vector_tid(p: &[u8], off: usize) -> Tid {
    Tid::new(get_u32(p, off), get_u16(p, off + 4))
}
pub fn vector_flags(p: &[u8], off: usize) -> u16 {
    get_u16(p, off + 6)
}

/// A (block, slot) link: block u32 then slot u16; block 0 (the meta page) is none.
fn slot_link(p: &[u8], off: usize) -> Option<(u32, u16)> {
    let block = get_u32(p, off);
    (block != 0).then(|| (block, get_u16(p, off + 4)))
}

fn put_slot_link(p: &mut [u8], off: usize, link: Option<(u32, u16)>) {
    let (block, slot) = link.unwrap_or((0, 0));
    put_u32(p, off, block);
    put_u16(p, off + 4, slot);
}

/// Marks the vector record at `off` dead and on the free chain, linking it to `next`, and keeps
/// in its first value the code page its code was removed from (where an insert that takes the
/// slot puts its code, if that page still has room).
pub fn put_free_vector(p: &mut [u8], off: usize, next: Option<(u32, u16)>, code_page: u32) {
    put_slot_link(p, off, next);
    put_u16(p, off + 6, VEC_DEAD | VEC_FREE);
    put_u32(p, off + VALUES, code_page);
}

/// The code page a free record names (see [`put_free_vector`]); None for block 0.
pub fn free_vector_code_page(p: &[u8], off: usize) -> Option<u32> {
    let b = get_u32(p, off + VALUES);
    (b != 0).then_some(b)
}

/// The next free slot of a record on the free chain (`vector_flags` has [`VEC_FREE`]).
pub fn free_vector_link(p: &[u8], off: usize) -> Option<(u32, u16)> {
    slot_link(p, off)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strides_fit_at_max_dims() {
        let d = crate::options::MAX_DIMS;
        assert!(capacity(dir_stride(d)) >= 1);
        assert!(capacity(vec_stride(d)) >= 1);
        assert!(capacity(code_stride(d)) >= 1);
        assert!(capacity(code_stride(1)) <= u16::MAX as usize);
        assert_eq!(code_stride(128), 144);
        assert_eq!(capacity(code_stride(128)), 56);
    }
}
