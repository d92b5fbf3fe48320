//! The admin token of the test harnesses (`tests/common`,
//! `tests/dataplane_common`, process clusters): one per test process.

#![allow(dead_code)] // each harness uses a different part

use topod::config::NodeConfig;

/// The admin token of every harness cluster of this test process: each
/// node's `security.initial_admin_token_file` holds it, and every request
/// of these helpers carries it (unless it sets its own `authorization`).
pub fn harness_token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(topod::security::token::generate)
}

/// Sets `config`'s initial admin token file to one holding
/// [`harness_token`] (written beside its data dir). A secure node asks
/// for tokens; its peers call it with their certificates instead.
pub fn give_token(config: &mut NodeConfig) {
    let file = config.data_dir.with_extension("admin-token");
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent).expect("token file dir");
    }
    std::fs::write(&file, format!("{}\n", harness_token())).expect("token file");
    config.security.initial_admin_token_file = Some(file);
}
