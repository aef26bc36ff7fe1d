//! The digit model (DESIGN.md §6): preprocessing, tract inference of a model's NNEF form
//! and the registry (feature `model`, what predict links), and behind feature `train` the
//! dataset, the hand-written trainer and its fine-tune, the ONNX writer and weight reader,
//! the ONNX → NNEF conversion, publishing, the artifacts a line ships with, and what a
//! retrain decides before training (its hold-out, its parameters).

pub mod infer;
pub mod preprocess;
pub mod registry;

#[cfg(feature = "train")]
pub mod dataset;
#[cfg(feature = "train")]
pub use inferloop_nn as nn;
#[cfg(feature = "train")]
pub mod onnx;
#[cfg(feature = "train")]
pub mod retrain;
#[cfg(feature = "train")]
pub mod train;

#[cfg(all(test, feature = "train"))]
mod shipped_tests;
