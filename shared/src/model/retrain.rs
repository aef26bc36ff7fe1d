//! What a retrain (DESIGN.md §11) decides before it trains: which feedback is held out
//! for the promotion gate, and the parameters of the fine-tune.

use super::train::TrainParams;
use crate::domain::Line;
use sha2::{Digest, Sha256};

/// One feedback sample in this many is held out.
pub const HOLDOUT_EVERY: u64 = 5;
/// How many times an epoch each feedback input is seen (see [`super::train::fine_tune`]).
pub const FEEDBACK_WEIGHT: usize = 5;
// A run's epochs and seed are also auto-retrain settings, which link no trainer.
pub use crate::autoretrain::{DEFAULT_EPOCHS, DEFAULT_SEED, MAX_EPOCHS};

/// Whether the feedback on `prediction_id` belongs to the hold-out: a fifth of the
/// feedback, chosen by a hash of the prediction id, so the same samples are held out in
/// every retrain (a sample once used to judge a candidate is never trained on by the
/// next one) and the choice needs no state.
pub fn in_holdout(prediction_id: &str) -> bool {
    let digest = Sha256::digest(prediction_id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) % HOLDOUT_EVERY == 0
}

/// The fine-tune's parameters: the line's own, but a third of its peak learning rate
/// (the weights are already trained; the full rate would undo much of that) over
/// `epochs`. A tenth learned too little: in the shipped-model test, 6 of 20 corrected
/// test images after 2 or 4 epochs, against 10 or more at a third.
pub fn fine_tune_params(line: Line, seed: u64, epochs: usize) -> TrainParams {
    let base = line.default_params(seed);
    TrainParams {
        epochs,
        learning_rate: base.learning_rate / 3.0,
        ..base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifth_is_held_out_and_always_the_same_fifth() {
        let ids: Vec<String> = (0..10_000).map(|i| format!("01JPRED{i:08}")).collect();
        let held: Vec<bool> = ids.iter().map(|id| in_holdout(id)).collect();
        let share = held.iter().filter(|&&h| h).count() as f64 / ids.len() as f64;
        // Binomial(10 000, 0.2): sd 0.004.
        assert!((share - 0.2).abs() < 0.015, "{share}");
        assert_eq!(
            held,
            ids.iter().map(|id| in_holdout(id)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_fine_tune_keeps_the_line_but_its_rate() {
        let params = fine_tune_params(Line::V2, 9, 2);
        let base = Line::V2.default_params(9);
        assert_eq!(
            (params.seed, params.epochs, params.batch_size),
            (9, 2, base.batch_size)
        );
        assert!((params.learning_rate - base.learning_rate / 3.0).abs() < 1e-9);
    }
}
