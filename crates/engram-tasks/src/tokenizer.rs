//! Tokenisers.
