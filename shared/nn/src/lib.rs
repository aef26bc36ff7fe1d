//! A small hand-written trainer: dense, convolution, ReLU and 2×2 max-pool
//! layers, softmax cross-entropy, Adam, all in plain `f32`.
//!
//! Why hand-written: the two models are tiny (≤ 0.3 M parameters, 28×28
//! inputs) and train in minutes on 2 cores with per-sample loops; a library
//! such as candle would add ~100 s of build and, by unifying features, rebuild
//! ~150 crates of every function (DESIGN.md §7), for no accuracy gain. The
//! gradients are checked against finite differences in the tests below.
//!
//! Layout: activations are per sample, channel-major (`C×H×W`, ONNX's NCHW
//! without the batch), so a flatten between the convolutions and the dense
//! layers needs no reordering and the ONNX `Flatten` means the same thing.
//!
//! A crate of its own so that the dev profile optimises it (the root Cargo.toml): a
//! retrain in a test or under `cargo lambda watch` runs these loops over 8,000 images.

pub mod rng;

use rng::SplitMix64;

/// One layer; parameters live in the network's flat vector, in ONNX layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Layer {
    /// `y = W x + b`, `W` is `[outputs][inputs]` (ONNX Gemm with transB=1).
    Dense {
        inputs: usize,
        outputs: usize,
    },
    /// Stride 1, zero padding `(kernel-1)/2` (same size), `W` is `[out][in][k][k]`.
    Conv {
        channels_in: usize,
        channels_out: usize,
        kernel: usize,
        height: usize,
        width: usize,
    },
    Relu {
        len: usize,
    },
    /// 2×2, stride 2 (height and width even).
    MaxPool {
        channels: usize,
        height: usize,
        width: usize,
    },
}

impl Layer {
    pub fn input_len(&self) -> usize {
        match *self {
            Layer::Dense { inputs, .. } => inputs,
            Layer::Conv {
                channels_in,
                height,
                width,
                ..
            } => channels_in * height * width,
            Layer::Relu { len } => len,
            Layer::MaxPool {
                channels,
                height,
                width,
            } => channels * height * width,
        }
    }

    pub fn output_len(&self) -> usize {
        match *self {
            Layer::Dense { outputs, .. } => outputs,
            Layer::Conv {
                channels_out,
                height,
                width,
                ..
            } => channels_out * height * width,
            Layer::Relu { len } => len,
            Layer::MaxPool {
                channels,
                height,
                width,
            } => channels * (height / 2) * (width / 2),
        }
    }

    /// Weights then biases.
    pub fn param_len(&self) -> usize {
        match *self {
            Layer::Dense { inputs, outputs } => outputs * inputs + outputs,
            Layer::Conv {
                channels_in,
                channels_out,
                kernel,
                ..
            } => channels_out * channels_in * kernel * kernel + channels_out,
            Layer::Relu { .. } | Layer::MaxPool { .. } => 0,
        }
    }

    /// Fan-in, for He initialisation.
    fn fan_in(&self) -> usize {
        match *self {
            Layer::Dense { inputs, .. } => inputs,
            Layer::Conv {
                channels_in,
                kernel,
                ..
            } => channels_in * kernel * kernel,
            _ => 1,
        }
    }

    fn weight_len(&self) -> usize {
        match *self {
            Layer::Dense { outputs, .. } => self.param_len() - outputs,
            Layer::Conv { channels_out, .. } => self.param_len() - channels_out,
            _ => 0,
        }
    }

    fn forward(&self, p: &[f32], x: &[f32], y: &mut [f32]) {
        match *self {
            Layer::Dense { inputs, outputs } => {
                let (w, b) = p.split_at(outputs * inputs);
                for ((yo, row), bo) in y.iter_mut().zip(w.chunks_exact(inputs)).zip(b) {
                    *yo = bo + dot(row, x);
                }
            }
            Layer::Conv {
                channels_in,
                channels_out,
                kernel,
                height,
                width,
            } => {
                let (w, b) = p.split_at(channels_out * channels_in * kernel * kernel);
                let plane = height * width;
                for oc in 0..channels_out {
                    let out = &mut y[oc * plane..(oc + 1) * plane];
                    out.fill(b[oc]);
                    for ic in 0..channels_in {
                        let src = &x[ic * plane..(ic + 1) * plane];
                        let k0 = (oc * channels_in + ic) * kernel * kernel;
                        for ky in 0..kernel {
                            for kx in 0..kernel {
                                let wv = w[k0 + ky * kernel + kx];
                                for_each_tap(kernel, height, width, ky, kx, |oy, iy, ox, ix, n| {
                                    axpy(
                                        wv,
                                        &src[iy * width + ix..][..n],
                                        &mut out[oy * width + ox..][..n],
                                    );
                                });
                            }
                        }
                    }
                }
            }
            Layer::Relu { .. } => {
                for (yo, xi) in y.iter_mut().zip(x) {
                    *yo = xi.max(0.0);
                }
            }
            Layer::MaxPool {
                channels,
                height,
                width,
            } => {
                let (oh, ow) = (height / 2, width / 2);
                for c in 0..channels {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let i = c * height * width + 2 * oy * width + 2 * ox;
                            y[c * oh * ow + oy * ow + ox] =
                                x[i].max(x[i + 1]).max(x[i + width]).max(x[i + width + 1]);
                        }
                    }
                }
            }
        }
    }

    /// Accumulates into `dp` and writes `dx` (when given; the first layer needs none).
    fn backward(&self, p: &[f32], x: &[f32], dy: &[f32], dx: Option<&mut [f32]>, dp: &mut [f32]) {
        match *self {
            Layer::Dense { inputs, outputs } => {
                let (dw, db) = dp.split_at_mut(outputs * inputs);
                for ((row, g), d) in dw.chunks_exact_mut(inputs).zip(db.iter_mut()).zip(dy) {
                    *g += d;
                    axpy(*d, x, row);
                }
                if let Some(dx) = dx {
                    dx.fill(0.0);
                    let w = &p[..outputs * inputs];
                    for (row, d) in w.chunks_exact(inputs).zip(dy) {
                        axpy(*d, row, dx);
                    }
                }
            }
            Layer::Conv {
                channels_in,
                channels_out,
                kernel,
                height,
                width,
            } => {
                let weights = channels_out * channels_in * kernel * kernel;
                let (dw, db) = dp.split_at_mut(weights);
                let w = &p[..weights];
                let plane = height * width;
                for oc in 0..channels_out {
                    let g = &dy[oc * plane..(oc + 1) * plane];
                    db[oc] += g.iter().sum::<f32>();
                    for ic in 0..channels_in {
                        let src = &x[ic * plane..(ic + 1) * plane];
                        let k0 = (oc * channels_in + ic) * kernel * kernel;
                        for ky in 0..kernel {
                            for kx in 0..kernel {
                                let mut acc = 0.0;
                                for_each_tap(kernel, height, width, ky, kx, |oy, iy, ox, ix, n| {
                                    acc += dot(
                                        &g[oy * width + ox..][..n],
                                        &src[iy * width + ix..][..n],
                                    );
                                });
                                dw[k0 + ky * kernel + kx] += acc;
                            }
                        }
                    }
                }
                if let Some(dx) = dx {
                    dx.fill(0.0);
                    for oc in 0..channels_out {
                        let g = &dy[oc * plane..(oc + 1) * plane];
                        for ic in 0..channels_in {
                            let dst = &mut dx[ic * plane..(ic + 1) * plane];
                            let k0 = (oc * channels_in + ic) * kernel * kernel;
                            for ky in 0..kernel {
                                for kx in 0..kernel {
                                    let wv = w[k0 + ky * kernel + kx];
                                    for_each_tap(
                                        kernel,
                                        height,
                                        width,
                                        ky,
                                        kx,
                                        |oy, iy, ox, ix, n| {
                                            axpy(
                                                wv,
                                                &g[oy * width + ox..][..n],
                                                &mut dst[iy * width + ix..][..n],
                                            );
                                        },
                                    );
                                }
                            }
                        }
                    }
                }
            }
            Layer::Relu { .. } => {
                if let Some(dx) = dx {
                    for ((d, xi), g) in dx.iter_mut().zip(x).zip(dy) {
                        *d = if *xi > 0.0 { *g } else { 0.0 };
                    }
                }
            }
            Layer::MaxPool {
                channels,
                height,
                width,
            } => {
                if let Some(dx) = dx {
                    dx.fill(0.0);
                    let (oh, ow) = (height / 2, width / 2);
                    for c in 0..channels {
                        for oy in 0..oh {
                            for ox in 0..ow {
                                let i = c * height * width + 2 * oy * width + 2 * ox;
                                // The gradient goes to the first maximum, as the forward picked it.
                                let mut best = i;
                                for j in [i + 1, i + width, i + width + 1] {
                                    if x[j] > x[best] {
                                        best = j;
                                    }
                                }
                                dx[best] += dy[c * oh * ow + oy * ow + ox];
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Calls `f(out_row, in_row, out_col, in_col, run_length)` for each output row
/// that kernel tap (ky, kx) reaches inside the image (zero padding elsewhere).
#[inline]
fn for_each_tap(
    kernel: usize,
    height: usize,
    width: usize,
    ky: usize,
    kx: usize,
    mut f: impl FnMut(usize, usize, usize, usize, usize),
) {
    let pad = (kernel - 1) / 2;
    // Output o reads input o + k - pad; keep both inside 0..len.
    let range = |k: usize, len: usize| -> (usize, usize) {
        let lo = pad.saturating_sub(k);
        let hi = (len + pad).saturating_sub(k).min(len);
        (lo, hi)
    };
    let (oy0, oy1) = range(ky, height);
    let (ox0, ox1) = range(kx, width);
    if ox1 <= ox0 {
        return;
    }
    for oy in oy0..oy1 {
        f(oy, oy + ky - pad, ox0, ox0 + kx - pad, ox1 - ox0);
    }
}

#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight partial sums let the compiler vectorise without reassociating floats.
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[inline]
fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// A feed-forward stack and its parameters.
#[derive(Debug, Clone)]
pub struct Network {
    pub layers: Vec<Layer>,
    pub params: Vec<f32>,
}

/// Per-thread scratch: the activations of one sample.
pub struct Scratch {
    acts: Vec<Vec<f32>>,
    grads: Vec<Vec<f32>>,
}

impl Network {
    /// He-initialised weights (normal, σ = √(2/fan_in)), zero biases.
    pub fn new(layers: Vec<Layer>, rng: &mut Rng) -> Self {
        let mut params = Vec::new();
        for layer in &layers {
            let std = (2.0 / layer.fan_in() as f32).sqrt();
            params.extend((0..layer.weight_len()).map(|_| rng.normal() * std));
            params.resize(params.len() + layer.param_len() - layer.weight_len(), 0.0);
        }
        Self { layers, params }
    }

    pub fn input_len(&self) -> usize {
        self.layers.first().map_or(0, Layer::input_len)
    }

    pub fn output_len(&self) -> usize {
        self.layers.last().map_or(0, Layer::output_len)
    }

    /// The parameters of each layer.
    pub fn layer_params(&self) -> Vec<&[f32]> {
        let mut rest = self.params.as_slice();
        self.layers
            .iter()
            .map(|l| {
                let (mine, others) = rest.split_at(l.param_len());
                rest = others;
                mine
            })
            .collect()
    }

    pub fn scratch(&self) -> Scratch {
        let mut acts = vec![vec![0.0; self.input_len()]];
        acts.extend(self.layers.iter().map(|l| vec![0.0; l.output_len()]));
        let grads = acts.clone();
        Scratch { acts, grads }
    }

    /// Logits for one input.
    pub fn forward<'s>(&self, input: &[f32], s: &'s mut Scratch) -> &'s [f32] {
        s.acts[0].copy_from_slice(input);
        for ((i, layer), p) in self.layers.iter().enumerate().zip(self.layer_params()) {
            let (before, after) = s.acts.split_at_mut(i + 1);
            layer.forward(p, &before[i], &mut after[0]);
        }
        &s.acts[self.layers.len()]
    }

    /// Softmax cross-entropy loss of one sample; adds its gradient to `grad`.
    pub fn backward(&self, input: &[f32], label: usize, s: &mut Scratch, grad: &mut [f32]) -> f32 {
        self.forward(input, s);
        let n = self.layers.len();
        let logits = &s.acts[n];
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let total: f32 = logits.iter().map(|l| (l - max).exp()).sum();
        let loss = total.ln() + max - logits[label];
        for (g, l) in s.grads[n].iter_mut().zip(logits.iter()) {
            *g = (l - max).exp() / total;
        }
        s.grads[n][label] -= 1.0;

        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0);
        for l in &self.layers {
            offsets.push(offsets[offsets.len() - 1] + l.param_len());
        }
        for i in (0..n).rev() {
            let (lower, upper) = s.grads.split_at_mut(i + 1);
            let dx = if i == 0 {
                None
            } else {
                Some(lower[i].as_mut_slice())
            };
            self.layers[i].backward(
                &self.params[offsets[i]..offsets[i + 1]],
                &s.acts[i],
                &upper[0],
                dx,
                &mut grad[offsets[i]..offsets[i + 1]],
            );
        }
        loss
    }
}

/// Adam (Kingma & Ba) with decoupled weight decay on weights only.
pub struct Adam {
    m: Vec<f32>,
    v: Vec<f32>,
    step: i32,
    pub beta1: f32,
    pub beta2: f32,
    decay_mask: Vec<bool>,
}

impl Adam {
    pub fn new(net: &Network) -> Self {
        let mut decay_mask = Vec::with_capacity(net.params.len());
        for layer in &net.layers {
            decay_mask.extend(std::iter::repeat_n(true, layer.weight_len()));
            decay_mask.extend(std::iter::repeat_n(
                false,
                layer.param_len() - layer.weight_len(),
            ));
        }
        Self {
            m: vec![0.0; net.params.len()],
            v: vec![0.0; net.params.len()],
            step: 0,
            beta1: 0.9,
            beta2: 0.999,
            decay_mask,
        }
    }

    /// One step with the mean gradient `grad`.
    pub fn update(&mut self, params: &mut [f32], grad: &[f32], lr: f32, weight_decay: f32) {
        self.step += 1;
        let c1 = 1.0 - self.beta1.powi(self.step);
        let c2 = 1.0 - self.beta2.powi(self.step);
        for i in 0..params.len() {
            let g = grad[i];
            self.m[i] = self.beta1 * self.m[i] + (1.0 - self.beta1) * g;
            self.v[i] = self.beta2 * self.v[i] + (1.0 - self.beta2) * g * g;
            let update = (self.m[i] / c1) / ((self.v[i] / c2).sqrt() + 1e-8);
            let decay = if self.decay_mask[i] {
                weight_decay * params[i]
            } else {
                0.0
            };
            params[i] -= lr * (update + decay);
        }
    }
}

/// The trainer's draws from the shared SplitMix64 (crate::rng): the same stream on
/// every machine, which is all deterministic training needs.
#[derive(Debug, Clone)]
pub struct Rng(SplitMix64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(SplitMix64::new(seed))
    }

    /// A generator for a sub-task, independent of how many numbers others drew.
    pub fn derive(seed: u64, a: u64, b: u64) -> Self {
        let mut r = Self::new(
            seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F),
        );
        r.next_u64();
        r
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.uniform()
    }

    /// Uniform integer in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = self.uniform().max(1e-7);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central differences in f64 of the f32 loss: compares every analytic
    /// parameter and input gradient of a network with each layer kind.
    fn check(layers: Vec<Layer>, seed: u64) {
        let mut rng = Rng::new(seed);
        let net = Network::new(layers, &mut rng);
        let input: Vec<f32> = (0..net.input_len()).map(|_| rng.normal()).collect();
        let label = 3 % net.output_len();
        let mut s = net.scratch();
        let mut grad = vec![0.0; net.params.len()];
        net.backward(&input, label, &mut s, &mut grad);

        let loss = |net: &Network| -> f64 {
            let mut s = net.scratch();
            let logits: Vec<f64> = net
                .forward(&input, &mut s)
                .iter()
                .map(|&v| f64::from(v))
                .collect();
            let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let total: f64 = logits.iter().map(|l| (l - max).exp()).sum();
            total.ln() + max - logits[label]
        };
        let eps = 1e-3f32;
        let mut worst = 0.0f64;
        for (i, &g) in grad.iter().enumerate() {
            let mut plus = net.clone();
            plus.params[i] += eps;
            let mut minus = net.clone();
            minus.params[i] -= eps;
            let numeric = (loss(&plus) - loss(&minus)) / (2.0 * f64::from(eps));
            let analytic = f64::from(g);
            let err = (numeric - analytic).abs() / (numeric.abs() + analytic.abs()).max(1e-2);
            worst = worst.max(err);
            assert!(
                err < 2e-2,
                "param {i}: numeric {numeric} analytic {analytic}"
            );
        }
        assert!(worst < 2e-2);
    }

    #[test]
    fn dense_and_relu_gradients_match_finite_differences() {
        check(
            vec![
                Layer::Dense {
                    inputs: 7,
                    outputs: 6,
                },
                Layer::Relu { len: 6 },
                Layer::Dense {
                    inputs: 6,
                    outputs: 5,
                },
            ],
            1,
        );
    }

    #[test]
    fn conv_and_pool_gradients_match_finite_differences() {
        check(
            vec![
                Layer::Conv {
                    channels_in: 2,
                    channels_out: 3,
                    kernel: 3,
                    height: 6,
                    width: 6,
                },
                Layer::Relu { len: 108 },
                Layer::MaxPool {
                    channels: 3,
                    height: 6,
                    width: 6,
                },
                Layer::Conv {
                    channels_in: 3,
                    channels_out: 2,
                    kernel: 5,
                    height: 3,
                    width: 3,
                },
                Layer::Dense {
                    inputs: 18,
                    outputs: 4,
                },
            ],
            2,
        );
    }

    #[test]
    fn conv_matches_a_direct_definition() {
        let mut rng = Rng::new(9);
        let layer = Layer::Conv {
            channels_in: 2,
            channels_out: 2,
            kernel: 3,
            height: 4,
            width: 5,
        };
        let net = Network::new(vec![layer], &mut rng);
        let x: Vec<f32> = (0..40).map(|_| rng.normal()).collect();
        let mut s = net.scratch();
        let y = net.forward(&x, &mut s).to_vec();
        let (w, b) = net.params.split_at(36);
        for oc in 0..2 {
            for oy in 0..4i32 {
                for ox in 0..5i32 {
                    let mut v = b[oc];
                    for ic in 0..2 {
                        for ky in 0..3i32 {
                            for kx in 0..3i32 {
                                let (iy, ix) = (oy + ky - 1, ox + kx - 1);
                                if (0..4).contains(&iy) && (0..5).contains(&ix) {
                                    v += w[(oc * 2 + ic) * 9 + (ky * 3 + kx) as usize]
                                        * x[ic * 20 + (iy * 5 + ix) as usize];
                                }
                            }
                        }
                    }
                    let got = y[oc * 20 + (oy * 5 + ox) as usize];
                    assert!((got - v).abs() < 1e-5, "{got} vs {v}");
                }
            }
        }
    }
}
