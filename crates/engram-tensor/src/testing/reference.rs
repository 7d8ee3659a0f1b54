//! Plain f64 reference implementations, written for clarity rather than speed, that tests
//! compare the tensor versions against.

/// `log Σ exp(x)`, shifted by the maximum; `-inf` for an empty or all `-inf` slice.
pub fn logsumexp(x: &[f64]) -> f64 {
    let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + x.iter().map(|v| (v - max).exp()).sum::<f64>().ln()
}

/// Softmax of a slice.
pub fn softmax(x: &[f64]) -> Vec<f64> {
    let lse = logsumexp(x);
    x.iter().map(|v| (v - lse).exp()).collect()
}

/// Log-softmax of a slice.
pub fn log_softmax(x: &[f64]) -> Vec<f64> {
    let lse = logsumexp(x);
    x.iter().map(|v| v - lse).collect()
}

/// Softmax over the entries where `mask` is false; masked entries and fully masked slices get 0.
pub fn masked_softmax(x: &[f64], mask: &[bool]) -> Vec<f64> {
    let kept: Vec<f64> = x.iter().zip(mask).filter(|(_, m)| !**m).map(|(v, _)| *v).collect();
    let lse = logsumexp(&kept);
    x.iter().zip(mask).map(|(v, m)| if *m { 0.0 } else { (v - lse).exp() }).collect()
}

/// Entropy `-Σ p log p` of the distribution `softmax(logits)`, in nats.
pub fn entropy(logits: &[f64]) -> f64 {
    let logp = log_softmax(logits);
    -logp.iter().map(|l| if l.exp() == 0.0 { 0.0 } else { l.exp() * l }).sum::<f64>()
}

/// Cross-entropy of one row of logits with a target class, with label smoothing `eps` spread
/// uniformly over all classes (PyTorch's definition).
pub fn cross_entropy(logits: &[f64], target: usize, eps: f64) -> f64 {
    let logp = log_softmax(logits);
    let nll = -logp[target];
    let uniform = -logp.iter().sum::<f64>() / logits.len() as f64;
    (1.0 - eps) * nll + eps * uniform
}

/// `KL(p ‖ q) = Σ p (log p - log q)` with `p = softmax(p_logits)`, `q = softmax(q_logits)`.
pub fn kl_divergence(p_logits: &[f64], q_logits: &[f64]) -> f64 {
    let logp = log_softmax(p_logits);
    let logq = log_softmax(q_logits);
    logp.iter()
        .zip(&logq)
        .map(|(lp, lq)| if lp.exp() == 0.0 { 0.0 } else { lp.exp() * (lp - lq) })
        .sum()
}
