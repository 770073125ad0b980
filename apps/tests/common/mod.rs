//! What the apps' broker tests share.

use std::process::Command;

use homa_integration_tests::kafka;

/// Runs `homa <command> --bootstrap <test broker> <args>`: whether it succeeded, and what it
/// printed (stdout, then stderr).
pub fn homa(command: &str, args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_homa"))
        .arg(command)
        .args(["--bootstrap", kafka().bootstrap_servers()])
        .args(args)
        .output()
        .expect("homa runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}
