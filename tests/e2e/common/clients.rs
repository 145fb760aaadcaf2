//! Client programs the tests drive (python, node, java): run one, get its output.

use tokio::process::Command;

/// Runs a client program; returns what it printed, failing the test with both streams
/// when it fails, or with how to install it when it is missing.
pub async fn run(mut cmd: Command) -> String {
    let program = cmd.as_std().get_program().to_string_lossy().into_owned();
    let out = cmd
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}); run scripts/services.sh"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{program} failed:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// A Python script.
pub async fn python(script: &str) -> String {
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script]);
    run(cmd).await
}

/// Fails unless `out` has each of `lines` as a whole line.
pub fn assert_lines(out: &str, lines: &[&str]) {
    for line in lines {
        assert!(out.lines().any(|l| l == *line), "no `{line}` in:\n{out}");
    }
}
