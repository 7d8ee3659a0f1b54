//! Positional information for attention: sinusoidal and learned absolute encodings, rotary
//! embeddings (RoPE) and ALiBi biases.

mod alibi;
mod learned;
mod rope;
mod sinusoidal;

pub use alibi::{alibi_bias, alibi_slopes};
pub use learned::{LearnedPositionalEncoding, LearnedPositionalEncodingConfig};
pub use rope::{RotaryEncoding, RotaryEncodingConfig};
pub use sinusoidal::sinusoidal_encoding;
