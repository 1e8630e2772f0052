//! The binary under test, and the tools a few tests need beyond cargo. Everything else the suite shares with
//! the other crates' tests comes from `testkit` (the launcher, scratch PostgreSQL databases, the demo keys).

use std::path::{Path, PathBuf};

/// The `refund-ledger` executable Cargo built for this suite.
pub(crate) fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_refund-ledger"))
}

/// Set to 1 (CI does) to make a test whose tool is missing fail instead of skipping.
const REQUIRE_TOOLS: &str = "REFUND_LEDGER_REQUIRE_TOOLS";

/// The first of `names` found on `PATH`. Without any: prints a skip line for `test` and answers `None`,
/// or fails when `REFUND_LEDGER_REQUIRE_TOOLS=1`.
pub(crate) fn required_tool(test: &str, names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = names
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |folder| folder.join(name)))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        let message = format!("{test}: none of {names:?} on PATH");
        assert!(
            std::env::var(REQUIRE_TOOLS).as_deref() != Ok("1"),
            "{message}, and {REQUIRE_TOOLS}=1 requires it"
        );
        eprintln!("SKIPPED {message} (install it, e.g. Debian's package; {REQUIRE_TOOLS}=1 makes this a failure)");
    }
    found
}
