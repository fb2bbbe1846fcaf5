//! Distance kernels. Each kernel keeps `LANES` independent partial sums so that the compiler can
//! vectorize the loop without reassociating floating-point additions (which it may not do on its
//! own). On x86-64 the same body is compiled a second time with AVX2 and FMA enabled and chosen at
//! run time, so one binary runs everywhere and uses wide registers where they exist.

const LANES: usize = 16;

#[inline(always)]
fn l2_squared_body(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (ac, ar) = a.split_at(a.len() / LANES * LANES);
    let (bc, br) = b.split_at(ac.len());
    for (x, y) in ac.chunks_exact(LANES).zip(bc.chunks_exact(LANES)) {
        for i in 0..LANES {
            let d = x[i] - y[i];
            acc[i] += d * d;
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (x, y) in ar.iter().zip(br) {
        let d = x - y;
        sum += d * d;
    }
    sum
}

#[inline(always)]
fn dot_body(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (ac, ar) = a.split_at(a.len() / LANES * LANES);
    let (bc, br) = b.split_at(ac.len());
    for (x, y) in ac.chunks_exact(LANES).zip(bc.chunks_exact(LANES)) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (x, y) in ar.iter().zip(br) {
        sum += x * y;
    }
    sum
}

/// Dot product, squared norm of a and squared norm of b (for cosine distance). Three single-sum
/// passes: each vectorizes as well as `dot` does, and after the first the vectors are in L1
/// cache, whereas one loop with three sums measured at a quarter of the speed.
#[inline(always)]
fn cosine_parts_body(a: &[f32], b: &[f32]) -> (f32, f32, f32) {
    (dot_body(a, b), dot_body(a, a), dot_body(b, b))
}

macro_rules! dispatch {
    ($(#[$doc:meta])* $name:ident, $body:ident, $ret:ty) => {
        $(#[$doc])*
        ///
        /// Panics if the slices differ in length: callers check dimensions and report a user error first.
        #[inline]
        pub fn $name(a: &[f32], b: &[f32]) -> $ret {
            assert_eq!(a.len(), b.len(), "distance between vectors of different dimensions");
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn wide(a: &[f32], b: &[f32]) -> $ret {
                    $body(a, b)
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // Safety: the features were detected on this CPU just above.
                    return unsafe { wide(a, b) };
                }
            }
            $body(a, b)
        }
    };
}

dispatch!(
    /// Squared Euclidean distance.
    l2_squared, l2_squared_body, f32
);
dispatch!(
    /// Inner product.
    dot, dot_body, f32
);
dispatch!(
    /// (a·b, |a|², |b|²) in one pass.
    cosine_parts, cosine_parts_body, (f32, f32, f32)
);

/// Euclidean distance, accumulated in f32 and returned as f64 as PostgreSQL's float8.
#[inline]
pub fn l2_distance(a: &[f32], b: &[f32]) -> f64 {
    (l2_squared(a, b) as f64).sqrt()
}

/// Cosine distance, 1 - cos(a, b), clamped to [0, 2]. NaN when either vector is zero, as pgvector.
#[inline]
pub fn cosine_distance(a: &[f32], b: &[f32]) -> f64 {
    let (ab, aa, bb) = cosine_parts(a, b);
    let sim = ab as f64 / ((aa as f64) * (bb as f64)).sqrt();
    if sim.is_nan() {
        return f64::NAN;
    }
    1.0 - sim.clamp(-1.0, 1.0)
}

/// Euclidean norm.
#[inline]
pub fn norm(a: &[f32]) -> f64 {
    (dot(a, a) as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator, so the tests need no crates.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> f32 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        }
        fn vec(&mut self, n: usize) -> Vec<f32> {
            (0..n).map(|_| self.next()).collect()
        }
    }

    fn close(x: f64, y: f64) -> bool {
        (x - y).abs() <= 1e-4 * (1.0 + x.abs().max(y.abs()))
    }

    #[test]
    fn kernels_match_reference_loops() {
        let mut rng = Lcg(42);
        for n in (1..70).chain([127, 128, 129, 512, 1000, 2048, 16000]) {
            for _ in 0..5 {
                let a = rng.vec(n);
                let b = rng.vec(n);
                let l2: f64 = a
                    .iter()
                    .zip(&b)
                    .map(|(x, y)| ((x - y) as f64).powi(2))
                    .sum();
                let ip: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
                let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
                let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
                assert!(close(l2_squared(&a, &b) as f64, l2), "l2 n={n}");
                assert!(close(l2_distance(&a, &b), l2.sqrt()), "l2 distance n={n}");
                assert!(close(dot(&a, &b) as f64, ip), "dot n={n}");
                assert!(close(norm(&a), na), "norm n={n}");
                assert!(
                    close(cosine_distance(&a, &b), 1.0 - ip / (na * nb)),
                    "cosine n={n}"
                );
            }
        }
    }

    #[test]
    fn cosine_edges() {
        assert!(cosine_distance(&[0.0, 0.0], &[1.0, 2.0]).is_nan());
        assert_eq!(cosine_distance(&[1.0, 2.0], &[2.0, 4.0]), 0.0);
        assert!(close(cosine_distance(&[1.0, 0.0], &[-1.0, 0.0]), 2.0));
    }

    #[test]
    #[should_panic(expected = "different dimensions")]
    fn mismatched_lengths_panic() {
        l2_squared(&[1.0], &[1.0, 2.0]);
    }
}
