//! Steppable k-means on a sample: k-means++ seeding (Arthur & Vassilvitskii, 2007), then Lloyd
//! iterations. Each [`KMeans::step`] is a bounded amount of work, so the caller can check for
//! interrupts and report progress between steps.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use synthsearch_vector::distance::l2_squared;

/// Above this many lists, seeding picks sample points at random: k-means++ costs k passes.
pub const MAX_PLUSPLUS_LISTS: usize = 4096;

/// Nearest centroid to `x` by L2 and its squared distance.
#[inline]
pub fn nearest(centroids: &[f32], dims: usize, x: &[f32]) -> (u32, f32) {
    let mut best = (0u32, f32::INFINITY);
    for (i, c) in centroids.chunks_exact(dims).enumerate() {
        let d = l2_squared(x, c);
        if d < best.1 {
            best = (i as u32, d);
        }
    }
    best
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// Seeding chose `done` of `of` centers.
    Seeding {
        done: usize,
        of: usize,
    },
    /// Lloyd iteration `done` of `of` finished; `inertia` is the mean squared distance to centers.
    Iteration {
        done: u32,
        of: u32,
        inertia: f64,
    },
    Done,
}

enum State {
    Seeding { min_dist: Vec<f32> },
    Lloyd { iteration: u32 },
    Done,
}

pub struct KMeans {
    dims: usize,
    k: usize,
    sample: Vec<f32>,
    centroids: Vec<f32>,
    spherical: bool,
    iterations: u32,
    rng: ChaCha8Rng,
    state: State,
}

impl KMeans {
    /// `sample` is flat (`n * dims`). `spherical` keeps centers at unit length (cosine).
    pub fn new(
        sample: Vec<f32>,
        dims: usize,
        k: usize,
        iterations: u32,
        spherical: bool,
        seed: u64,
    ) -> KMeans {
        assert!(dims > 0 && k > 0 && sample.len().is_multiple_of(dims));
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = sample.len() / dims;
        let mut km = KMeans {
            dims,
            k,
            sample,
            centroids: Vec::with_capacity(k * dims),
            spherical,
            iterations,
            rng: rng.clone(),
            state: State::Done,
        };
        if n == 0 {
            // An empty table: arbitrary centers; inserts fill the lists later.
            km.centroids = (0..k * dims)
                .map(|_| rng.random::<f32>() * 2.0 - 1.0)
                .collect();
            km.normalize();
            return km;
        }
        if k >= n || k > MAX_PLUSPLUS_LISTS {
            for i in 0..k {
                let p = if k >= n {
                    i % n
                } else {
                    rng.random_range(0..n)
                };
                km.centroids
                    .extend_from_slice(&km.sample[p * dims..(p + 1) * dims]);
            }
            km.rng = rng;
            km.state = if k >= n {
                State::Done
            } else {
                State::Lloyd { iteration: 0 }
            };
            km.normalize();
            return km;
        }
        let first = rng.random_range(0..n);
        km.centroids
            .extend_from_slice(&km.sample[first * dims..(first + 1) * dims]);
        km.rng = rng;
        km.state = if k == 1 {
            // The one center is picked: seeding is over.
            km.normalize();
            State::Lloyd { iteration: 0 }
        } else {
            State::Seeding {
                min_dist: vec![f32::INFINITY; n],
            }
        };
        km
    }

    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Seeding picks plus iterations: the progress denominator.
    pub fn total_steps(&self) -> usize {
        self.k + self.iterations as usize
    }

    fn normalize(&mut self) {
        if self.spherical {
            for c in self.centroids.chunks_exact_mut(self.dims) {
                let n = synthsearch_vector::norm(c) as f32;
                if n > 0.0 {
                    c.iter_mut().for_each(|x| *x /= n);
                }
            }
        }
    }

    /// One seeding pick or one Lloyd iteration.
    pub fn step(&mut self) -> Step {
        let dims = self.dims;
        match &mut self.state {
            State::Done => Step::Done,
            State::Seeding { min_dist } => {
                let last = &self.centroids[self.centroids.len() - dims..];
                let total: f64 = self
                    .sample
                    .par_chunks_exact(dims)
                    .zip(min_dist.par_iter_mut())
                    .map(|(x, m)| {
                        *m = m.min(l2_squared(x, last));
                        *m as f64
                    })
                    .sum();
                // D² sampling: the next center is a point drawn with probability ∝ its squared distance.
                let n = min_dist.len();
                let mut pick = self.rng.random_range(0..n);
                if total > 0.0 {
                    let mut target = self.rng.random::<f64>() * total;
                    for (i, &m) in min_dist.iter().enumerate() {
                        target -= m as f64;
                        if target <= 0.0 {
                            pick = i;
                            break;
                        }
                    }
                }
                self.centroids
                    .extend_from_slice(&self.sample[pick * dims..(pick + 1) * dims]);
                let done = self.centroids.len() / dims;
                if done == self.k {
                    self.normalize();
                    self.state = State::Lloyd { iteration: 0 };
                }
                Step::Seeding { done, of: self.k }
            }
            State::Lloyd { iteration } => {
                let done = *iteration + 1;
                let centroids = &self.centroids;
                let assign: Vec<(u32, f32)> = self
                    .sample
                    .par_chunks_exact(dims)
                    .map(|x| nearest(centroids, dims, x))
                    .collect();
                let mut sums = vec![0.0f64; self.k * dims];
                let mut counts = vec![0u32; self.k];
                let mut inertia = 0.0f64;
                for (x, &(c, d)) in self.sample.chunks_exact(dims).zip(&assign) {
                    counts[c as usize] += 1;
                    inertia += d as f64;
                    for (s, &v) in sums[c as usize * dims..(c as usize + 1) * dims]
                        .iter_mut()
                        .zip(x)
                    {
                        *s += v as f64;
                    }
                }
                for (i, c) in self.centroids.chunks_exact_mut(dims).enumerate() {
                    if counts[i] > 0 {
                        let inv = 1.0 / counts[i] as f64;
                        for (cv, s) in c.iter_mut().zip(&sums[i * dims..(i + 1) * dims]) {
                            *cv = (*s * inv) as f32;
                        }
                    }
                }
                // An empty list takes a point from the biggest one, so no list is wasted.
                for i in 0..self.k {
                    if counts[i] == 0 {
                        let big = (0..self.k).max_by_key(|&j| counts[j]).unwrap();
                        let members: Vec<usize> = (0..assign.len())
                            .filter(|&p| assign[p].0 as usize == big)
                            .collect();
                        if members.len() < 2 {
                            break;
                        }
                        let p = members[self.rng.random_range(0..members.len())];
                        let point = self.sample[p * dims..(p + 1) * dims].to_vec();
                        self.centroids[i * dims..(i + 1) * dims].copy_from_slice(&point);
                        counts[big] -= 1;
                        counts[i] = 1;
                    }
                }
                self.normalize();
                self.state = if done >= self.iterations {
                    State::Done
                } else {
                    State::Lloyd { iteration: done }
                };
                Step::Iteration {
                    done,
                    of: self.iterations,
                    inertia: inertia / assign.len().max(1) as f64,
                }
            }
        }
    }

    /// Whether seeding is over (Lloyd's iterations, if any are left, come next).
    pub fn seeded(&self) -> bool {
        !matches!(self.state, State::Seeding { .. })
    }

    /// Runs the Lloyd iterations left elsewhere (a GPU) once seeding is over:
    /// `f(sample, centers, dims, iterations, spherical)` updates the centers in place (a list
    /// that gets no point keeps its center) and returns whether it did. False, with nothing
    /// changed, before seeding is over, when no iteration is left or when `f` declines (the
    /// steps then run here as before).
    pub fn lloyd_with(
        &mut self,
        f: impl FnOnce(&[f32], &mut [f32], usize, u32, bool) -> bool,
    ) -> bool {
        let State::Lloyd { iteration } = self.state else {
            return false;
        };
        let left = self.iterations.saturating_sub(iteration);
        if left == 0
            || !f(
                &self.sample,
                &mut self.centroids,
                self.dims,
                left,
                self.spherical,
            )
        {
            return false;
        }
        self.normalize();
        self.state = State::Done;
        true
    }

    /// The centers, flat (`k * dims`). Runs any steps left.
    pub fn finish(mut self) -> Vec<f32> {
        while !self.is_done() {
            self.step();
        }
        self.centroids
    }

    /// The sample, for fitting quantizers after training.
    pub fn sample(&self) -> &[f32] {
        &self.sample
    }

    pub fn centroids(&self) -> &[f32] {
        &self.centroids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_list_of_several_points_finishes() {
        let mut km = KMeans::new(vec![0.0, 0.0, 2.0, 2.0], 2, 1, 3, false, 7);
        let mut steps = 0;
        while !km.is_done() {
            km.step();
            steps += 1;
            assert!(
                steps <= km.total_steps(),
                "k-means with k = 1 does not finish"
            );
        }
        assert_eq!(km.centroids(), &[1.0, 1.0]);
    }

    #[test]
    fn inertia_falls_and_finds_separated_clusters() {
        let mix = crate::testdata::Mixture::new(8, 4, 0.05, 1);
        let sample: Vec<f32> = (0..400).flat_map(|i| mix.point(2, i)).collect();
        let mut km = KMeans::new(sample, 8, 4, 10, false, 3);
        let mut inertias = vec![];
        while !km.is_done() {
            if let Step::Iteration { inertia, .. } = km.step() {
                inertias.push(inertia);
            }
        }
        assert_eq!(inertias.len(), 10);
        assert!(inertias.last().unwrap() <= inertias.first().unwrap());
        // With tight clusters every mixture center is within a few spreads of some centroid.
        let cs = km.finish();
        for c in &mix.centers {
            let (_, d) = nearest(&cs, 8, c);
            assert!(d.sqrt() < 0.3, "center missed by {}", d.sqrt());
        }
    }
}
