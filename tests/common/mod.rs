//! Shared helpers for the integration tests.

use std::path::PathBuf;

/// Path of a real test model in `$HEARTH_TEST_MODELS` (default `~/.cache/hearth/test-models`).
/// Panics (the test fails, it is never skipped) when the file is missing.
pub fn test_model(name: &str) -> PathBuf {
    let dir = match std::env::var_os("HEARTH_TEST_MODELS") {
        Some(d) => PathBuf::from(d),
        None => {
            let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
            home.join(".cache/hearth/test-models")
        }
    };
    let p = dir.join(name);
    assert!(
        p.is_file(),
        "test model {} is missing; run scripts/fetch-test-models to download it",
        p.display()
    );
    p
}

/// Path of a file under tests/data.
pub fn data_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}
