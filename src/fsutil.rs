//! Small file helpers: what the gateway writes (keys, tokens, the store, the monitoring
//! log) is private to its user — files 0600, directories 0700 — and a looser mode found
//! at start is said loudly (an existing mode is never loosened or changed).

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Creates `dir` and its missing parents with mode 0700; an existing one is left as it is.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Creates `path` empty with mode 0600 if it does not exist (so what writes it later,
/// SQLite say, keeps that mode).
pub fn private_file(path: &Path) -> std::io::Result<()> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Says so when `path` (and, for a directory, the files in it) can be read by group or
/// others; returns how many such paths it found.
pub fn warn_if_open(path: &Path) -> usize {
    let mut open = 0;
    let mut check = |p: &Path| {
        if let Ok(meta) = std::fs::metadata(p)
            && meta.permissions().mode() & 0o077 != 0
        {
            open += 1;
            let mode = meta.permissions().mode() & 0o777;
            tracing::warn!(
                path = %p.display(),
                mode = format!("{mode:o}"),
                "readable by other users: it holds verifiers, secrets or statements; chmod it to {}",
                if meta.is_dir() { "700" } else { "600" }
            );
        }
    };
    check(path);
    if path.is_dir()
        && let Ok(entries) = std::fs::read_dir(path)
    {
        for entry in entries.flatten() {
            check(&entry.path());
        }
    }
    open
}

/// Writes `bytes` to `path` with mode 0600, creating parent directories (0700).
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        private_dir(parent)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
