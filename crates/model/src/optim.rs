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
                let _ = m.g_mul_scalar_(self.beta1);
                let _ = m.g_add_(&(&g * (1.0 - self.beta1)));
                let _ = v.g_mul_scalar_(self.beta2);
                let _ = v.g_add_(&(g.square() * (1.0 - self.beta2)));
                let denom = (&*v / bc2).sqrt() + self.eps;
                let _ = p.g_sub_(&(&*m / denom * step_size));
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
