//! 8-bit scalar quantization of residuals (vector minus its list centroid), one (lo, step) pair
//! per list shared by every dimension, and the kernels that estimate distances from codes.
//!
//! Each code record also stores its exact quantization error e = |x - decode(code)|, so a scan
//! knows a lower bound on the true distance (triangle inequality: |q - x| >= |q - x'| - e, and
//! |q·x - q·x'| <= |q| e) and reranks only the candidates that bound cannot rule out.

const LANES: usize = 16;

/// Code `c` stands for `lo + c * step` in every dimension.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantizer {
    pub lo: f32,
    pub step: f32,
}

impl Quantizer {
    /// Covers [lo, hi]; values outside are clamped (their error is recorded, so bounds stay true).
    pub fn fit(lo: f32, hi: f32) -> Quantizer {
        let (lo, hi) = if lo.is_finite() && hi.is_finite() && hi >= lo {
            (lo, hi)
        } else {
            (-1.0, 1.0)
        };
        Quantizer {
            lo,
            step: ((hi - lo) / 255.0).max(1e-20),
        }
    }

    /// Encodes `x - centroid` into `out`, returning |x - decoded|.
    pub fn encode(&self, x: &[f32], centroid: &[f32], out: &mut [u8]) -> f32 {
        let inv = 1.0 / self.step;
        let mut err = 0.0f64;
        for ((o, &v), &c) in out.iter_mut().zip(x).zip(centroid) {
            let r = v - c;
            let code = ((r - self.lo) * inv).round().clamp(0.0, 255.0);
            *o = code as u8;
            let d = (r - (self.lo + code * self.step)) as f64;
            err += d * d;
        }
        // Round up a little so float error in the scan's arithmetic cannot make the bound lie.
        (err.sqrt() * (1.0 + 1e-5) + 1e-6) as f32
    }
}

/// Query residuals in code units are clamped to this range before rounding to i16. Clamping to a
/// box that holds every code (0..=255) only brings the query nearer every code, so estimates stay
/// lower bounds; the range keeps the i32 sums of squares from overflowing at MAX_DIMS.
pub const QUERY_CODE_MIN: f32 = -2048.0;
pub const QUERY_CODE_MAX: f32 = 2303.0;

/// Σ (q[d] - code[d])² in integers for each of `n` code records; record `r`'s code starts at
/// `page[first + r * stride]`; `q` is the query residual in code units, rounded and clamped.
pub fn l2_codes_i16(
    q: &[i16],
    page: &[u8],
    first: usize,
    stride: usize,
    n: usize,
    out: &mut [f32],
) {
    assert!(out.len() >= n && (n == 0 || first + (n - 1) * stride + q.len() <= page.len()));
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            // Safety: AVX2 was detected on this CPU just above, and the assertion keeps every
            // code load inside `page`.
            return unsafe { l2_codes_i16_avx2(q, page, first, stride, n, out) };
        }
    }
    for (r, o) in out.iter_mut().enumerate().take(n) {
        let code = &page[first + r * stride..first + r * stride + q.len()];
        let s: i64 = q
            .iter()
            .zip(code)
            .map(|(&a, &b)| ((a as i32 - b as i32) * (a as i32 - b as i32)) as i64)
            .sum();
        *o = s as f32;
    }
}

/// The most dimensions whose whole squared distance in code units fits in an i32:
/// 404 * (QUERY_CODE_MAX - 0)² < 2³¹, and likewise for QUERY_CODE_MIN - 255.
#[cfg(target_arch = "x86_64")]
const MAX_QUAD_DIMS: usize = 400;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn l2_codes_i16_avx2(
    q: &[i16],
    page: &[u8],
    first: usize,
    stride: usize,
    n: usize,
    out: &mut [f32],
) {
    use std::arch::x86_64::*;
    let dims = q.len();
    let full = dims / 16 * 16;
    // Four codes at a time: each block of the query is loaded once for the four, and the four
    // sums are reduced together (three horizontal adds and one cross-lane add).
    // Their sums are reduced in 32 bits, which holds any code's total only up to
    // MAX_QUAD_DIMS dimensions (each term is at most 2303²); wider codes go one at a time, their
    // lanes added in 64 bits.
    let quads = if full == dims && dims <= MAX_QUAD_DIMS {
        n / 4 * 4
    } else {
        0
    };
    let mut r = 0;
    while r < quads {
        let base = first + r * stride;
        // The assertion at the call keeps code r + 3's last byte inside `page`.
        let codes = [
            &page[base..base + dims],
            &page[base + stride..base + stride + dims],
            &page[base + 2 * stride..base + 2 * stride + dims],
            &page[base + 3 * stride..base + 3 * stride + dims],
        ];
        let mut acc = [_mm256_setzero_si256(); 4];
        let mut i = 0;
        while i < full {
            // Safety: i + 16 <= dims: every load stays inside `q` and the four codes.
            unsafe {
                let qv = _mm256_loadu_si256(q.as_ptr().add(i) as *const __m256i);
                for (a, code) in acc.iter_mut().zip(&codes) {
                    let c = _mm256_cvtepu8_epi16(_mm_loadu_si128(
                        code.as_ptr().add(i) as *const __m128i
                    ));
                    let d = _mm256_sub_epi16(qv, c);
                    *a = _mm256_add_epi32(*a, _mm256_madd_epi16(d, d));
                }
            }
            i += 16;
        }
        // hadd(a0, a1) holds pair sums of a0 and a1 per 128-bit half; two rounds leave each
        // code's partial sums in one lane per half; adding the halves finishes them.
        let h01 = _mm256_hadd_epi32(acc[0], acc[1]);
        let h23 = _mm256_hadd_epi32(acc[2], acc[3]);
        let h = _mm256_hadd_epi32(h01, h23);
        let sums = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        let mut lanes = [0i32; 4];
        // Safety: `lanes` is 16 bytes, the size of the register stored.
        unsafe { _mm_storeu_si128(lanes.as_mut_ptr() as *mut __m128i, sums) };
        for (k, s) in lanes.iter().enumerate() {
            out[r + k] = *s as f32;
        }
        r += 4;
    }
    for (r, o) in out.iter_mut().enumerate().take(n).skip(quads) {
        let code = &page[first + r * stride..first + r * stride + dims];
        let mut acc = _mm256_setzero_si256();
        let mut i = 0;
        while i < full {
            // Safety: i + 16 <= dims, so both loads stay inside `code` and `q`.
            let (c, qv) = unsafe {
                (
                    _mm256_cvtepu8_epi16(_mm_loadu_si128(code.as_ptr().add(i) as *const __m128i)),
                    _mm256_loadu_si256(q.as_ptr().add(i) as *const __m256i),
                )
            };
            let d = _mm256_sub_epi16(qv, c);
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(d, d));
            i += 16;
        }
        let mut lanes = [0i32; 8];
        // Safety: `lanes` is 32 bytes, the size of the register stored.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, acc) };
        let mut s: i64 = lanes.iter().map(|&x| x as i64).sum();
        for (&a, &b) in q[full..].iter().zip(&code[full..]) {
            let d = a as i32 - b as i32;
            s += (d * d) as i64;
        }
        *o = s as f32;
    }
}

#[inline(always)]
fn l2_codes_body(q: &[f32], page: &[u8], first: usize, stride: usize, n: usize, out: &mut [f32]) {
    let dims = q.len();
    let (qc, qr) = q.split_at(dims / LANES * LANES);
    for (r, o) in out.iter_mut().enumerate().take(n) {
        let start = first + r * stride;
        let code = &page[start..start + dims];
        let (cc, cr) = code.split_at(qc.len());
        let mut acc = [0.0f32; LANES];
        for (x, y) in qc.chunks_exact(LANES).zip(cc.chunks_exact(LANES)) {
            for i in 0..LANES {
                let d = x[i] - y[i] as f32;
                acc[i] += d * d;
            }
        }
        let mut s: f32 = acc.iter().sum();
        for (x, y) in qr.iter().zip(cr) {
            let d = x - *y as f32;
            s += d * d;
        }
        *o = s;
    }
}

#[inline(always)]
fn dot_codes_body(q: &[f32], page: &[u8], first: usize, stride: usize, n: usize, out: &mut [f32]) {
    let dims = q.len();
    let (qc, qr) = q.split_at(dims / LANES * LANES);
    for (r, o) in out.iter_mut().enumerate().take(n) {
        let start = first + r * stride;
        let code = &page[start..start + dims];
        let (cc, cr) = code.split_at(qc.len());
        let mut acc = [0.0f32; LANES];
        for (x, y) in qc.chunks_exact(LANES).zip(cc.chunks_exact(LANES)) {
            for i in 0..LANES {
                acc[i] += x[i] * y[i] as f32;
            }
        }
        let mut s: f32 = acc.iter().sum();
        for (x, y) in qr.iter().zip(cr) {
            s += x * *y as f32;
        }
        *o = s;
    }
}

macro_rules! dispatch {
    ($(#[$doc:meta])* $name:ident, $body:ident) => {
        $(#[$doc])*
        /// Record `r`'s code starts at `page[first + r * stride]`; results go to `out[..n]`.
        pub fn $name(q: &[f32], page: &[u8], first: usize, stride: usize, n: usize, out: &mut [f32]) {
            assert!(out.len() >= n && (n == 0 || first + (n - 1) * stride + q.len() <= page.len()));
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn wide(q: &[f32], page: &[u8], first: usize, stride: usize, n: usize, out: &mut [f32]) {
                    $body(q, page, first, stride, n, out)
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // Safety: the features were detected on this CPU just above.
                    return unsafe { wide(q, page, first, stride, n, out) };
                }
            }
            $body(q, page, first, stride, n, out)
        }
    };
}

dispatch!(
    /// Σ (q[d] - code[d])² for each of `n` code records; `q` is the query residual in code units.
    l2_codes, l2_codes_body
);
dispatch!(
    /// Σ q[d] * code[d] for each of `n` code records.
    dot_codes, dot_codes_body
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_match_plain_loops_and_error_bounds_hold() {
        let dims = 37;
        let stride = 60;
        let n = 5;
        let mut page = vec![0u8; 8 + n * stride];
        let mut s = 7u32;
        let mut next = || {
            s = s.wrapping_mul(1664525).wrapping_add(1013904223);
            (s >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
        };
        let q: Vec<f32> = (0..dims).map(|_| next() * 300.0).collect();
        let c: Vec<f32> = (0..dims).map(|_| next()).collect();
        let quant = Quantizer::fit(-0.8, 0.8);
        let mut xs = vec![];
        for r in 0..n {
            let x: Vec<f32> = (0..dims).map(|_| next()).collect();
            let off = 8 + r * stride;
            let e = quant.encode(&x, &c, &mut page[off..off + dims]);
            let dec: Vec<f32> = page[off..off + dims]
                .iter()
                .zip(&c)
                .map(|(&k, &cc)| cc + quant.lo + k as f32 * quant.step)
                .collect();
            let true_e: f32 = x
                .iter()
                .zip(&dec)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f32>()
                .sqrt();
            assert!(e >= true_e && e <= true_e * 1.001 + 1e-5, "{e} vs {true_e}");
            xs.push(x);
        }
        let mut out = vec![0.0; n];
        l2_codes(&q, &page, 8, stride, n, &mut out);
        for (r, &o) in out.iter().enumerate().take(n) {
            let off = 8 + r * stride;
            let want: f32 = q
                .iter()
                .zip(&page[off..off + dims])
                .map(|(a, &b)| (a - b as f32).powi(2))
                .sum();
            assert!((o - want).abs() <= 1e-3 * want.abs().max(1.0));
        }
        let qi: Vec<i16> = q
            .iter()
            .map(|x| x.round().clamp(QUERY_CODE_MIN, QUERY_CODE_MAX) as i16)
            .collect();
        l2_codes_i16(&qi, &page, 8, stride, n, &mut out);
        for (r, &o) in out.iter().enumerate().take(n) {
            let off = 8 + r * stride;
            let want: i64 = qi
                .iter()
                .zip(&page[off..off + dims])
                .map(|(&a, &b)| ((a as i64) - b as i64).pow(2))
                .sum();
            assert_eq!(o, want as f32);
        }
        dot_codes(&q, &page, 8, stride, n, &mut out);
        for (r, &o) in out.iter().enumerate().take(n) {
            let off = 8 + r * stride;
            let want: f32 = q
                .iter()
                .zip(&page[off..off + dims])
                .map(|(a, &b)| a * b as f32)
                .sum();
            assert!((o - want).abs() <= 1e-3 * want.abs().max(1.0));
        }
    }

    #[test]
    fn the_i16_kernel_takes_four_codes_at_a_time_exactly() {
        // Whole blocks of 16 dimensions (four codes at a time, then the rest one by one), and
        // query values at both ends of their range.
        for (dims, n) in [(128usize, 11usize), (48, 4), (16, 3), (400, 5), (768, 9)] {
            let stride = dims + 20;
            let mut s = 11u32;
            let mut next = || {
                s = s.wrapping_mul(1664525).wrapping_add(1013904223);
                s >> 8
            };
            let page: Vec<u8> = (0..8 + n * stride).map(|_| next() as u8).collect();
            let qi: Vec<i16> = (0..dims)
                .map(|i| match i % 7 {
                    0 => QUERY_CODE_MIN as i16,
                    1 => QUERY_CODE_MAX as i16,
                    _ => (next() % 700) as i16 - 200,
                })
                .collect();
            // The worst case at the widest four-at-a-time width: every term at its largest.
            let (page, qi) = if dims == 400 {
                (vec![0u8; page.len()], vec![QUERY_CODE_MAX as i16; dims])
            } else {
                (page, qi)
            };
            let mut out = vec![0.0; n];
            l2_codes_i16(&qi, &page, 8, stride, n, &mut out);
            for (r, &o) in out.iter().enumerate() {
                let off = 8 + r * stride;
                let want: i64 = qi
                    .iter()
                    .zip(&page[off..off + dims])
                    .map(|(&a, &b)| ((a as i64) - b as i64).pow(2))
                    .sum();
                assert_eq!(o, want as f32, "dims {dims}, code {r}");
            }
        }
    }
}
