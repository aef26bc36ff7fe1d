//! What the statistics' tests share: reading lists out of the committed vectors
//! (`vectors/*.json`).

use serde_json::Value;

/// Every element of the array `v`, read by `read`; panics (a test's failure) naming the
/// first element that does not read.
pub fn list<T>(v: &Value, read: impl Fn(&Value) -> Option<T>) -> Vec<T> {
    v.as_array()
        .expect("a vector is an array")
        .iter()
        .map(|x| read(x).unwrap_or_else(|| panic!("{x} is not of the vector's type")))
        .collect()
}

pub fn floats(v: &Value) -> Vec<f64> {
    list(v, Value::as_f64)
}
