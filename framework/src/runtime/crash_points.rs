//! The crash points of the exactly-once commit: where the tests of its failure windows
//! (see `state::transactional`) crash the process, as a SIGKILL would, at a moment they
//! choose. They exist only with the `failpoints` feature, set by the `FAILPOINTS` variable
//! of the `fail` crate (e.g. `FAILPOINTS=homa::eos::after-commit=return` crashes at the
//! first commit that gets there) in a process that calls `fail::FailScenario::setup()`;
//! otherwise they are nothing.

/// Before `commit_transaction`: the offsets are in the transaction, which is still open.
pub(crate) const BEFORE_COMMIT: &str = "homa::eos::before-commit";
/// While `commit_transaction` waits for the broker: the process dies 2 ms into the call.
pub(crate) const DURING_COMMIT: &str = "homa::eos::during-commit";
/// The transaction committed; the stores have not yet taken its writes.
pub(crate) const AFTER_COMMIT: &str = "homa::eos::after-commit";
/// The stores took the transaction's writes.
pub(crate) const AFTER_APPLY: &str = "homa::eos::after-apply";

/// Crashes the process at point `name`, if the tests set it to.
#[cfg_attr(not(feature = "failpoints"), allow(unused_variables))]
pub(crate) fn crash_at(name: &str) {
    #[cfg(feature = "failpoints")]
    if fail::eval(name, |_| ()).is_some() {
        eprintln!("homa: crashing at {name}");
        std::process::abort();
    }
}

/// Crashes the process shortly after point `name`, if the tests set it to: the call
/// that follows is under way when it dies.
#[cfg_attr(not(feature = "failpoints"), allow(unused_variables))]
pub(crate) fn crash_soon_after(name: &str) {
    #[cfg(feature = "failpoints")]
    if fail::eval(name, |_| ()).is_some() {
        eprintln!("homa: crashing during {name}");
        std::thread::spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(2));
            std::process::abort();
        });
    }
}
