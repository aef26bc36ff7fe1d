//! `POST /drift/test-drift`: the check on two built-in samples an operator can run to see
//! that drift detection works with the current settings. Both come from the v2 test
//! split's reference, built into the binary: its even-numbered images against its
//! odd-numbered ones (the same distribution: expected `no_drift`), and against odd ones
//! where the digit 1 makes 40 % of the window instead of about 11 % (a named shift of
//! the issue: expected `drift`).

use inferloop::drift::DriftSettings;
use inferloop::drift::columns::{self, Column, Values};
use inferloop::drift::data;
use inferloop::drift::reference::TestSplitReference;
use serde_json::{Value, json};

const BUILT_IN: &str = include_str!("../../../models/v2/reference.json");
/// The shifted sample's size and its share of ones.
const SHIFTED_SIZE: usize = 600;
const SHIFTED_ONES: usize = 240;

fn pick(columns: &[Column], rows: &[usize]) -> Vec<Column> {
    columns
        .iter()
        .map(|c| Column {
            name: c.name.clone(),
            values: match &c.values {
                Values::Numeric(v) => Values::Numeric(rows.iter().map(|&i| v[i]).collect()),
                Values::Categorical(v) => {
                    Values::Categorical(rows.iter().map(|&i| v[i].clone()).collect())
                }
            },
        })
        .collect()
}

/// The two comparisons and whether each gave what it should.
pub fn run(settings: &DriftSettings) -> Value {
    let Ok(reference) = serde_json::from_str::<TestSplitReference>(BUILT_IN) else {
        return json!({"passed": false, "error": "the built-in sample does not parse"});
    };
    let all = reference.columns();
    let n = reference.samples;
    let even: Vec<usize> = (0..n).step_by(2).collect();
    let odd: Vec<usize> = (1..n).step_by(2).collect();
    let ones: Vec<usize> = odd
        .iter()
        .copied()
        .filter(|&i| reference.predicted_digit[i] == 1)
        .collect();
    let others: Vec<usize> = odd
        .iter()
        .copied()
        .filter(|&i| reference.predicted_digit[i] != 1)
        .collect();
    if ones.is_empty() || others.is_empty() {
        return json!({"passed": false, "error": "the built-in sample has no ones"});
    }
    let shifted: Vec<usize> = ones
        .iter()
        .cycle()
        .take(SHIFTED_ONES)
        .chain(others.iter().take(SHIFTED_SIZE - SHIFTED_ONES))
        .copied()
        .collect();
    let reference_columns = pick(&all, &even);
    let judge = |rows: &[usize]| {
        let current = pick(&all, rows);
        let pairs = columns::pair(&reference_columns, &current).unwrap_or_default();
        data::compare(&pairs, |_| Ok(()), even.len(), rows.len(), settings)
    };
    let unshifted = judge(&odd);
    let shifted = judge(&shifted);
    let passed =
        unshifted.verdict == data::Verdict::NoDrift && shifted.verdict == data::Verdict::Drift;
    json!({
        "passed": passed,
        "unshifted": {
            "description": "test-split images with odd numbers against those with even numbers",
            "expected": "no_drift",
            "result": unshifted,
        },
        "shifted": {
            "description": "the same, with the digit 1 making 40 % of the window",
            "expected": "drift",
            "result": shifted,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_samples_give_the_expected_verdicts() {
        let result = run(&DriftSettings::default());
        assert_eq!(
            result["unshifted"]["result"]["verdict"], "no_drift",
            "{result:#}"
        );
        assert_eq!(result["shifted"]["result"]["verdict"], "drift");
        assert_eq!(result["passed"], true);
        let tests = &result["shifted"]["result"]["statistical_tests"];
        assert_eq!(tests["predicted_digit"]["is_drifted"], true);
        // The test split's photos are all 28×28: nothing to compare.
        assert_eq!(tests["raw_width"]["status"], "not_comparable");
    }
}
