//! Output files are written whole or not at all: to a temporary file beside the target (the
//! `tempfile` crate), then renamed into place, so an error never leaves a half-written file.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// Writes `bytes` to `path` atomically (a temporary file next to it, then a rename).
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp =
        tempfile::NamedTempFile::new_in(dir).with_context(|| format!("{}", path.display()))?;
    tmp.write_all(bytes)
        .with_context(|| format!("{}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.error))?;
    Ok(())
}
