//! Adam (Kingma and Ba 2015) with its moments as plain named tensors, so a checkpoint carries
//! them and a resumed run continues exactly where it stopped.

use std::collections::HashMap;

use tch::Tensor;

use crate::error::{ModelError, Result};

#[derive(Debug)]
pub struct Adam {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    params: Vec<(String, Tensor)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    pub steps: u64,
}

impl Adam {
    pub fn new(params: Vec<(String, Tensor)>, lr: f64, beta1: f64, beta2: f64) -> Adam {
        let m = params.iter().map(|(_, p)| p.zeros_like()).collect();
        let v = params.iter().map(|(_, p)| p.zeros_like()).collect();
        Adam {
            lr,
            beta1,
            beta2,
            eps: 1e-8,
            params,
            m,
            v,
            steps: 0,
        }
    }

    pub fn zero_grad(&mut self) {
        for (_, p) in self.params.iter_mut() {
            p.zero_grad();
        }
    }

    pub fn step(&mut self) {
        self.steps += 1;
        let t = self.steps as i32;
        let bc1 = 1.0 - self.beta1.powi(t);
        let bc2 = 1.0 - self.beta2.powi(t);
        let step_size = self.lr / bc1;
        tch::no_grad(|| {
            for (((_, p), m), v) in self.params.iter_mut().zip(&mut self.m).zip(&mut self.v) {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                // In place, two temporaries a tensor (the text encoder's bucket table is most
                // of the parameters, and every extra pass over it shows in the step time):
                // m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
                // p -= step_size m / (sqrt(v / bc2) + eps).
                let _ = m.lerp_(&g, 1.0 - self.beta1);
                let _ = v.g_mul_scalar_(self.beta2);
                let _ = v.addcmul_(&(&g * (1.0 - self.beta2)), &g);
                let mut denom = v.sqrt();
                let _ = denom.g_div_scalar_(bc2.sqrt());
                let _ = denom.g_add_scalar_(self.eps);
                let _ = denom.g_div_scalar_(-step_size);
                let _ = p.addcdiv_(m, &denom);
            }
        });
    }

    /// Moments as named tensors under `prefix`.
    pub fn state(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for ((name, _), (m, v)) in self.params.iter().zip(self.m.iter().zip(&self.v)) {
            out.push((format!("{prefix}/m/{name}"), m.shallow_clone()));
            out.push((format!("{prefix}/v/{name}"), v.shallow_clone()));
        }
        out
    }

    /// Restores moments written by [`Adam::state`].
    pub fn load_state(
        &mut self,
        named: &mut HashMap<String, Tensor>,
        prefix: &str,
        steps: u64,
    ) -> Result<()> {
        for ((name, p), (m, v)) in self.params.iter().zip(self.m.iter_mut().zip(&mut self.v)) {
            for (kind, dst) in [("m", &mut *m), ("v", &mut *v)] {
                let key = format!("{prefix}/{kind}/{name}");
                let src = named
                    .remove(&key)
                    .ok_or_else(|| ModelError::Mismatch(format!("trainer state lacks {key:?}")))?;
                if src.size() != p.size() {
                    return Err(ModelError::Mismatch(format!(
                        "trainer state {key:?} has shape {:?}, expected {:?}",
                        src.size(),
                        p.size()
                    )));
                }
                tch::no_grad(|| dst.f_copy_(&src))?;
            }
        }
        self.steps = steps;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// The in-place update against Adam written out in scalars (Kingma and Ba, Algorithm 1).
    #[test]
    fn matches_the_textbook_update() {
        let start = [0.5f32, -1.5, 2.0, 0.0];
        let p = Tensor::from_slice(&start).set_requires_grad(true);
        let (lr, b1, b2, eps) = (0.01, 0.5, 0.9, 1e-8);
        let mut opt = Adam::new(vec![("p".into(), p.shallow_clone())], lr, b1, b2);
        let mut x: Vec<f64> = start.iter().map(|&v| v as f64).collect();
        let mut m = [0.0f64; 4];
        let mut v = [0.0f64; 4];
        for t in 1..=6 {
            opt.zero_grad();
            // loss = sum(p^3) / 3, gradient p^2.
            let loss = p.pow_tensor_scalar(3).sum(Kind::Float) / 3.0;
            loss.backward();
            opt.step();
            for i in 0..4 {
                let g = x[i] * x[i];
                m[i] = b1 * m[i] + (1.0 - b1) * g;
                v[i] = b2 * v[i] + (1.0 - b2) * g * g;
                let mh = m[i] / (1.0 - b1.powi(t));
                let vh = v[i] / (1.0 - b2.powi(t));
                x[i] -= lr * mh / (vh.sqrt() + eps);
            }
        }
        let got = Vec::<f32>::try_from(&p.detach().to_device(Device::Cpu)).unwrap();
        for (g, w) in got.iter().zip(&x) {
            assert!((*g as f64 - w).abs() < 1e-5, "{got:?} vs {x:?}");
        }
        assert_eq!(opt.steps, 6);
    }
}
