//! Benchmarks of engram-attention on the PyTorch anchors' cases (`shared/anchors/torch`, cases
//! `attn/mha/*`, `attn/sdpa/*` and `decode/*`), with burn-nn's layers beside engram's.
//!
//! - `attention/mha_fwd`, `attention/mha_fwd_bwd`: self-attention layer, batch 8, d_model 256,
//!   8 heads, seq 128 / 512 / 2048, full and causal; ids `<impl>/<backend>/s<seq>_<mask>`,
//!   throughput in tokens (`batch · seq`). `fwd` runs on the plain device (PyTorch's is
//!   `inference_mode`), `fwd_bwd` on the autodiff device backpropagating `output.mean()`, as the
//!   anchors' `y.mean().backward()`. burn-nn's layer is left out at seq 2048: it keeps four
//!   `[8, 8, 2048, 2048]` f32 tensors (1 GiB each) alive and takes minutes per sample here.
//! - `attention/decode`: the anchors' GPT-style decoder (4 pre-norm blocks, d_model 256, 4 heads,
//!   GELU MLP 1024, learned positions, vocab 8000, prompt 16), greedy generation with the KV
//!   cache and by recomputing the prefix; ids `<impl>/<backend>/b<batch>_g<tokens>`, throughput
//!   in generated tokens. The output head goes through `engram_attention::linear`, as the
//!   blocks' projections do, so that a step's products all take engram's few-row kernel on flex.
//! - `attention/long_train`: forward+backward of causal attention alone at batch 1, 8 heads,
//!   head width 64, seq 4096. Peak memory at 4096 and 16384 comes from a separate process per
//!   case: `cargo run --release -p engram-attention --example long_train` (it prints VmHWM),
//!   because this binary's own peak belongs to every group it ran before.

use burn::module::Module;
use burn::nn::attention::{
    MhaInput as BurnMhaInput, MultiHeadAttentionConfig as BurnMhaConfig,
    generate_autoregressive_mask,
};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Distribution, Int, Tensor};
use criterion::{BenchmarkId, Criterion, Throughput};
use engram_attention::{
    AttentionMask, AttentionOptions, CausalSelfAttention, CausalSelfAttentionConfig, FeedForward,
    FeedForwardConfig, KvCache, MhaInput, MultiHeadAttentionConfig, attention, linear,
};

use crate::time_synced;

const BATCH: usize = 8;
const D_MODEL: usize = 256;
const N_HEADS: usize = 8;
const SEQS: [usize; 3] = [128, 512, 2048];

/// The device and its backend's name for bench ids.
fn setup() -> (Device, &'static str) {
    let backend = match engram_tensor::select_backend(None) {
        Ok(backend) => backend,
        Err(err) => panic!("attention bench: no usable backend: {err}"),
    };
    match backend.device() {
        Ok(device) => (device, backend.name()),
        Err(err) => panic!("attention bench: cannot create the {backend} device: {err}"),
    }
}

/// A self-attention layer under test: `[batch, seq, d_model]` to the same.
type Layer = Box<dyn Fn(Tensor<3>) -> Tensor<3>>;

fn layers(device: &Device, seq: usize, causal: bool) -> Vec<(&'static str, Layer)> {
    let ours = MultiHeadAttentionConfig::new(D_MODEL, N_HEADS).with_dropout(0.0).init(device);
    let engram: Layer = Box::new(move |x| {
        let input = MhaInput::self_attention(x);
        ours.forward(if causal { input.causal() } else { input }).output
    });
    let mut layers = vec![("engram", engram)];
    if seq < 2048 {
        let theirs = BurnMhaConfig::new(D_MODEL, N_HEADS).with_dropout(0.0).init(device);
        let mask = causal.then(|| generate_autoregressive_mask(BATCH, seq, device));
        let burn: Layer = Box::new(move |x| {
            let input = BurnMhaInput::self_attn(x);
            let input = match &mask {
                Some(mask) => input.mask_attn(mask.clone()),
                None => input,
            };
            theirs.forward(input).context
        });
        layers.push(("burn-nn", burn));
    }
    layers
}

fn bench_mha(c: &mut Criterion, backward: bool) {
    let (plain, backend) = setup();
    let device = if backward { plain.clone().autodiff() } else { plain.clone() };
    let name = if backward { "attention/mha_fwd_bwd" } else { "attention/mha_fwd" };
    let mut group = c.benchmark_group(name);
    for seq in SEQS {
        let x = Tensor::<3>::random([BATCH, seq, D_MODEL], Distribution::Normal(0.0, 1.0), &device);
        group.throughput(Throughput::Elements((BATCH * seq) as u64));
        for causal in [false, true] {
            let params = format!("s{seq}_{}", if causal { "causal" } else { "full" });
            for (impl_name, layer) in layers(&device, seq, causal) {
                let id = BenchmarkId::new(format!("{impl_name}/{backend}"), &params);
                group.bench_function(id, |b| {
                    b.iter_custom(|iters| {
                        time_synced(&plain, iters, || {
                            let y = layer(x.clone());
                            if backward { Some(y.mean().backward()) } else { None }
                        })
                    })
                });
            }
        }
    }
    group.finish();
}

/// `attention/mha_fwd`.
pub fn attention_mha_fwd(c: &mut Criterion) {
    bench_mha(c, false);
}

/// `attention/mha_fwd_bwd`.
pub fn attention_mha_fwd_bwd(c: &mut Criterion) {
    bench_mha(c, true);
}

/// `attention/long_train`: causal attention alone, forward and backward of `output.mean()`
/// into queries, keys and values, batch 1, 8 heads, head width 64.
pub fn attention_long_train(c: &mut Criterion) {
    let (plain, backend) = setup();
    let device = plain.clone().autodiff();
    let mut group = c.benchmark_group("attention/long_train");
    // Longer sequences take minutes per sample here; their time and peak memory come from
    // the long_train example (see the module docs).
    let seq = 4096;
    let shape = [1, 8, seq, 64];
    let qkv =
        [1, 2, 3].map(|_| Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device));
    group.throughput(Throughput::Elements(seq as u64));
    let id = BenchmarkId::new(format!("engram/{backend}"), format!("b1h8d64s{seq}_causal"));
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            time_synced(&plain, iters, || {
                let [q, k, v] = qkv.clone().map(|x| x.require_grad());
                let mask = AttentionMask::causal(0);
                let out = attention(q, k, v, &mask, None, AttentionOptions::default());
                out.output.mean().backward()
            })
        })
    });
    group.finish();
}

/// The anchors' decoder sizes (`DEC` in `shared/anchors/torch/cases.py`).
const VOCAB: usize = 8000;
const DEC_D: usize = 256;
const DEC_HEADS: usize = 4;
const DEC_FF: usize = 1024;
const DEC_LAYERS: usize = 4;
const PROMPT: usize = 16;
const MAX_GEN: usize = 256;

/// One pre-norm block: cached causal self-attention and a GELU MLP.
#[derive(Module, Debug)]
struct Block {
    norm_attention: LayerNorm,
    attention: CausalSelfAttention,
    norm_ffn: LayerNorm,
    ffn: FeedForward,
}

/// The anchors' GPT-style decoder: token and learned position embeddings, blocks, final norm,
/// output projection without bias; logits for the last position only.
#[derive(Module, Debug)]
struct Gpt {
    tokens: Embedding,
    positions: Embedding,
    blocks: Vec<Block>,
    norm: LayerNorm,
    head: Linear,
}

impl Gpt {
    fn new(device: &Device) -> Self {
        let attention = MultiHeadAttentionConfig::new(DEC_D, DEC_HEADS).with_dropout(0.0);
        let block = || Block {
            norm_attention: LayerNormConfig::new(DEC_D).init(device),
            attention: CausalSelfAttentionConfig::new(attention.clone()).init(device),
            norm_ffn: LayerNormConfig::new(DEC_D).init(device),
            ffn: FeedForwardConfig::new(DEC_D, DEC_FF).with_dropout(0.0).init(device),
        };
        Gpt {
            tokens: EmbeddingConfig::new(VOCAB, DEC_D).init(device),
            positions: EmbeddingConfig::new(PROMPT + MAX_GEN, DEC_D).init(device),
            blocks: (0..DEC_LAYERS).map(|_| block()).collect(),
            norm: LayerNormConfig::new(DEC_D).init(device),
            head: LinearConfig::new(DEC_D, VOCAB).with_bias(false).init(device),
        }
    }

    /// Next tokens `[batch, 1]` after `ids` (`[batch, t]` at positions `start..start + t`),
    /// continuing from `caches`.
    fn next(
        &self,
        ids: Tensor<2, Int>,
        start: usize,
        caches: Vec<KvCache>,
    ) -> (Tensor<2, Int>, Vec<KvCache>) {
        let [batch, t] = ids.dims();
        let device = ids.device();
        let positions = Tensor::<1, Int>::arange(start as i64..(start + t) as i64, &device);
        let mut x = self.tokens.forward(ids) + self.positions.forward(positions.reshape([1, t]));
        let mut grown = Vec::with_capacity(caches.len());
        for (block, cache) in self.blocks.iter().zip(caches) {
            let encoded =
                block.attention.forward(block.norm_attention.forward(x.clone()), None, cache);
            x = x + encoded.output;
            x = x.clone() + block.ffn.forward(block.norm_ffn.forward(x));
            grown.push(encoded.state);
        }
        let last = x.narrow(1, t - 1, 1).reshape([batch, DEC_D]);
        let logits = linear(&self.head, self.norm.forward(last));
        (logits.argmax(1), grown)
    }

    fn empty_caches(&self, batch: usize, device: &Device) -> Vec<KvCache> {
        self.blocks.iter().map(|b| b.attention.empty_cache(batch, device)).collect()
    }

    /// Prefill, then one cached step per generated token.
    fn generate_cached(&self, prompt: Tensor<2, Int>, n: usize) -> Tensor<2, Int> {
        let [batch, t] = prompt.dims();
        let caches = self.empty_caches(batch, &prompt.device());
        let (mut next, mut caches) = self.next(prompt, 0, caches);
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            out.push(next.clone());
            if i + 1 == n {
                break;
            }
            (next, caches) = self.next(next, t + i, caches);
        }
        Tensor::cat(out, 1)
    }

    /// The whole prefix recomputed for every generated token.
    fn generate_recomputed(&self, prompt: Tensor<2, Int>, n: usize) -> Tensor<2, Int> {
        let [batch, _] = prompt.dims();
        let device = prompt.device();
        let mut seq = prompt;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let (next, _) = self.next(seq.clone(), 0, self.empty_caches(batch, &device));
            out.push(next.clone());
            seq = Tensor::cat(vec![seq, next], 1);
        }
        Tensor::cat(out, 1)
    }
}

/// `attention/decode`: the anchors' `decode/{cache,nocache}/b<batch>/g<tokens>` runs.
pub fn attention_decode(c: &mut Criterion) {
    let (device, backend) = setup();
    let model = Gpt::new(&device);
    let mut group = c.benchmark_group("attention/decode");
    let runs = [
        ("cache", 1, 256),
        ("nocache", 1, 256),
        ("cache", 16, 256),
        ("cache", 16, 64),
        ("nocache", 16, 64),
    ];
    for (mode, batch, tokens) in runs {
        let prompt = Tensor::<2, Int>::random(
            [batch, PROMPT],
            Distribution::Uniform(0.0, VOCAB as f64),
            &device,
        );
        group.throughput(Throughput::Elements((batch * tokens) as u64));
        let id =
            BenchmarkId::new(format!("engram-{mode}/{backend}"), format!("b{batch}_g{tokens}"));
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                time_synced(&device, iters, || match mode {
                    "cache" => model.generate_cached(prompt.clone(), tokens),
                    _ => model.generate_recomputed(prompt.clone(), tokens),
                })
            })
        });
    }
    group.finish();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_and_recomputed_generation_agree() {
        let (device, _) = setup();
        let model = Gpt::new(&device);
        let prompt = Tensor::<2, Int>::random(
            [2, PROMPT],
            Distribution::Uniform(0.0, VOCAB as f64),
            &device,
        );
        let cached = model.generate_cached(prompt.clone(), 12).into_data();
        let recomputed = model.generate_recomputed(prompt, 12).into_data();
        assert_eq!(cached, recomputed);
    }
}
