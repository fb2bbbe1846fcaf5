//! Lloyd's iterations of an index build on a GPU, through libtorch: when `synthsearch.device`
//! picks CUDA (`cuda`, or `auto` with a GPU in sight), CREATE INDEX seeds the lists with
//! k-means++ on the CPU as always and then runs the iterations there: distances as one matrix
//! product per chunk of the sample, an argmin, and the new centers from index_add sums. A list
//! that gets no point keeps its center (the CPU path moves it to a point of the fullest list).
//! With the CPU device it is the same arithmetic, which is how the tests check it.

use tch::{Device, Kind, Tensor};

/// Rows of the sample per distance matrix (rows x lists floats at a time).
const CHUNK: i64 = 16384;

/// Runs `iterations` Lloyd iterations over `sample` (`n * dims`) from `centers` (`k * dims`)
/// on `device`, leaving the new centers in `centers`. `spherical`: centers kept at unit length.
pub fn lloyd(
    sample: &[f32],
    centers: &mut [f32],
    dims: usize,
    iterations: u32,
    spherical: bool,
    device: Device,
) -> Result<(), tch::TchError> {
    let (n, k, d) = (
        (sample.len() / dims) as i64,
        (centers.len() / dims) as i64,
        dims as i64,
    );
    let x = Tensor::f_from_slice(sample)?
        .f_view([n, d])?
        .f_to_device(device)?;
    let mut c = Tensor::f_from_slice(centers)?
        .f_view([k, d])?
        .f_to_device(device)?;
    let ones = Tensor::f_ones([n], (Kind::Float, device))?;
    for _ in 0..iterations {
        // |x - c|^2 = |x|^2 - 2 x.c + |c|^2; |x|^2 does not change the argmin.
        let cn = (&c * &c).f_sum_dim_intlist([1i64].as_slice(), false, Kind::Float)?;
        let mut parts = Vec::new();
        let mut start = 0;
        while start < n {
            let len = CHUNK.min(n - start);
            let xs = x.f_narrow(0, start, len)?;
            let dist = cn.f_unsqueeze(0)? - xs.f_matmul(&c.f_transpose(0, 1)?)? * 2.0;
            parts.push(dist.f_argmin(1, false)?);
            start += len;
        }
        let assign = Tensor::f_cat(&parts, 0)?;
        let sums = Tensor::f_zeros([k, d], (Kind::Float, device))?.f_index_add(0, &assign, &x)?;
        let counts = Tensor::f_zeros([k], (Kind::Float, device))?.f_index_add(0, &assign, &ones)?;
        let filled = counts.f_gt(0.0)?.f_unsqueeze(1)?;
        let mean = sums / counts.f_clamp_min(1.0)?.f_unsqueeze(1)?;
        c = mean.f_where_self(&filled, &c)?;
        if spherical {
            let norm = c
                .f_norm_scalaropt_dim(2.0, [1i64].as_slice(), true)?
                .f_clamp_min(1e-12)?;
            c /= norm;
        }
    }
    let out = c.f_to_device(Device::Cpu)?.f_contiguous()?.f_view([-1])?;
    out.f_copy_data(centers, centers.len())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use synthsearch_index::kmeans::KMeans;
    use synthsearch_index::testdata::Mixture;

    #[test]
    fn the_same_iterations_as_the_cpu_path() {
        let dims = 16;
        let mix = Mixture::new(dims, 12, 0.3, 5);
        let sample: Vec<f32> = (0..3000).flat_map(|i| mix.point(6, i)).collect();
        for spherical in [false, true] {
            let mut cpu = KMeans::new(sample.clone(), dims, 12, 8, spherical, 11);
            let mut other = KMeans::new(sample.clone(), dims, 12, 8, spherical, 11);
            while !cpu.seeded() {
                cpu.step();
                other.step();
            }
            assert_eq!(cpu.centroids(), other.centroids());
            assert!(other.lloyd_with(|s, c, d, it, sph| {
                assert_eq!(it, 8);
                lloyd(s, c, d, it, sph, Device::Cpu).expect("Lloyd on the CPU device");
                true
            }));
            assert!(other.is_done());
            let a = cpu.finish();
            let b = other.finish();
            let worst = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            assert!(
                worst < 1e-3,
                "spherical {spherical}: centers differ by {worst}"
            );
        }
    }
}
