//! Client programs the tests drive (python, node, java): run one, get its output.

use std::path::PathBuf;

use tokio::process::Command;

/// Runs a client program; returns what it printed, failing the test with both streams
/// when it fails, or with how to install it when it is missing.
pub async fn run(mut cmd: Command) -> String {
    let program = cmd.as_std().get_program().to_string_lossy().into_owned();
    let out = cmd
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}); run scripts/test-tools.sh"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{program} failed:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// A Python script, run by the virtualenv that `scripts/test-tools.sh` fills with the
/// drivers (never the system Python).
pub async fn python(script: &str) -> String {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/venv/bin/python3");
    assert!(
        python.exists(),
        "{} is missing: run scripts/test-tools.sh (makes it, with the Python drivers)",
        python.display()
    );
    let mut cmd = Command::new(python);
    cmd.args(["-c", script]);
    run(cmd).await
}

/// Fails unless `out` has each of `lines` as a whole line.
pub fn assert_lines(out: &str, lines: &[&str]) {
    for line in lines {
        assert!(out.lines().any(|l| l == *line), "no `{line}` in:\n{out}");
    }
}

/// Where `scripts/test-tools.sh` installs the drivers (npm).
fn node_modules() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/node-clients/node_modules")
}

/// Runs `body` as an async function with node; returns its output, failing the test with
/// both streams if it failed.
pub async fn node(body: &str) -> String {
    let script = format!(
        "(async () => {{\n{body}\n}})().catch(e => {{ console.error(e); process.exit(1); }});"
    );
    let modules = node_modules();
    assert!(
        modules.join("pg").exists() && modules.join("mysql2").exists(),
        "{} lacks pg or mysql2: run scripts/test-tools.sh (installs them with npm)",
        modules.display()
    );
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg("-e").arg(&script).env("NODE_PATH", &modules);
    run(cmd).await
}

/// The JDBC driver jars (Debian `libpostgresql-jdbc-java`, `libmariadb-java`; installed
/// by `scripts/test-tools.sh`).
pub const PGJDBC: &str = "/usr/share/java/postgresql.jar";
pub const MARIADB_J: &str = "/usr/share/java/mariadb-java-client.jar";

/// Runs `source` (a class `Main`) with the JDK's source launcher and `jar` on the class
/// path; returns its output, failing the test with both streams if it failed.
pub async fn java(jar: &str, source: &str, args: &[&str]) -> String {
    assert!(
        std::path::Path::new(jar).exists(),
        "{jar} is missing: run scripts/test-tools.sh (installs the Debian JDBC driver packages)"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Main.java");
    std::fs::write(&file, source).unwrap();
    let mut cmd = tokio::process::Command::new("java");
    cmd.arg("-cp").arg(jar).arg(&file).args(args);
    run(cmd).await
}

/// The `portcullis` binary as a user runs it: from a directory other than the repository,
/// with `env` set and `stdin` fed; (exit code, stdout, stderr). Asynchronous: the gateway
/// it talks to runs on the test's own thread.
pub async fn portcullis(
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> (i32, String, String) {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.unwrap();
    }
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
