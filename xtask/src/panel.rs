//! Building the browser panel with Trunk, and measuring what a browser downloads.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::install;
use crate::step::{execute, Failure, Result};

/// Installs what the panel's build needs (unless `skip_install`), then builds it in release into
/// `dist/`. Returns the PATH the build used (Trunk and wasm-opt on it).
pub fn build(workspace: &Path, skip_install: bool) -> Result<OsString> {
    let path = if skip_install {
        install::panel_path(workspace)?
    } else {
        install::ensure_panel_tools(workspace)?
    };
    execute(trunk(workspace, &path).args(["build", "--release"]))?;
    crate::dist::externalize_inline_scripts(&workspace.join("dist"))?;
    let bundle = bundle(&workspace.join("dist"))?;
    println!("    {}", describe(&bundle));
    Ok(path)
}

/// A Trunk command in the workspace, with the pinned tools first on PATH and downloads refused.
pub fn trunk(workspace: &Path, path: &OsString) -> Command {
    let bin = install::cargo_installed("trunk").unwrap_or_else(|_| PathBuf::from("trunk"));
    let mut cmd = Command::new(bin);
    cmd.current_dir(workspace)
        .env("PATH", path)
        // Every tool is installed by `install`; a download attempt is a bug, not a fallback.
        .env("TRUNK_OFFLINE", "true");
    cmd
}

/// The bundle a browser loads: (file, bytes, gzip -9 bytes) for each .wasm and .js in `dist`.
pub fn bundle(dist: &Path) -> Result<Vec<(String, u64, u64)>> {
    let entries = fs::read_dir(dist).map_err(|error| {
        Failure::new(format!(
            "cannot read {}: {error} (build the panel first)",
            dist.display()
        ))
    })?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        if !matches!(ext, "wasm" | "js") {
            continue;
        }
        let raw = entry.metadata().map(|m| m.len()).unwrap_or(0);
        out.push((
            path.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
            raw,
            gzip_len(&path)?,
        ));
    }
    out.sort();
    if out.is_empty() {
        return Err(Failure::new(format!(
            "no .wasm or .js in {}",
            dist.display()
        )));
    }
    Ok(out)
}

/// Bytes of `path` after `gzip -9`.
pub fn gzip_len(path: &Path) -> Result<u64> {
    let out = Command::new("gzip")
        .args(["-9", "-c"])
        .arg(path)
        .output()
        .map_err(|error| Failure::new(format!("cannot run gzip: {error}")))?;
    Ok(out.stdout.len() as u64)
}

/// One line: "panel bundle: 1,234 KB (wasm + js), 345 KB gzip".
pub fn describe(bundle: &[(String, u64, u64)]) -> String {
    let raw: u64 = bundle.iter().map(|b| b.1).sum();
    let gz: u64 = bundle.iter().map(|b| b.2).sum();
    format!(
        "panel bundle: {:.1} KB (wasm + js), {:.1} KB gzip",
        raw as f64 / 1000.0,
        gz as f64 / 1000.0
    )
}
