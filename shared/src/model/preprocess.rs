//! The model's preprocessing (DESIGN.md §6). It lives in its own crate
//! (shared/preprocess) only so that the release profile can build it for speed while
//! the rest of this crate is built for size (Cargo.toml, docs/benchmarks.md).

pub use inferloop_preprocess::*;
