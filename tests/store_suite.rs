//! openraft's storage conformance suite against the sled store, each test
//! in a fresh temporary data dir.

#![allow(clippy::result_large_err)] // openraft fixes the suite's error type

use openraft::testing::{StoreBuilder, Suite};
use tempfile::TempDir;
use topod::control::store::{LogStore, StateMachineStore, Store, DEFAULT_CACHE_BYTES};
use topod::control::types::{StorageError, TypeConfig};

/// Builds a store in a new temporary dir; the dir lives as long as the
/// returned guard.
struct SledBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for SledBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = tempfile::tempdir().expect("create a temporary dir");
        let store = Store::open(dir.path(), DEFAULT_CACHE_BYTES).expect("open the store");
        let (log, sm, _identity) = store.into_parts();
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_suite_passes_on_the_sled_store() {
    if let Err(e) = Suite::test_all(SledBuilder) {
        panic!("openraft storage suite failed: {e}");
    }
}
