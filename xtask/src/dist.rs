//! The release panel as static files that run under a strict Content Security Policy.
//!
//! Trunk loads the app from a small inline module script, which a policy without
//! `'unsafe-inline'` refuses. Every build moves it into a file named after its own SHA-256, so that
//! `dist/` needs no exception but `'wasm-unsafe-eval'`; a build that still has anything inline
//! (a script, a `<style>`, a `style=` or `on...=` attribute) fails here rather than in a browser.
//! `cargo xtask dist` builds and says how to serve it.

use std::ffi::OsString;
use std::fs;
use std::path::Path;
use std::process::Command;

use crate::panel;
use crate::step::{Failure, Result};

/// The policy the panel is tested under (`docs/security/content-security-policy`), with `BROKER`
/// standing for the broker's WebSocket URL (`wss://mqtt.example.com:8084`). `connect-src 'self'`
/// is for fetching the panel's own `.wasm`.
pub const CSP: &str = include_str!("../../docs/security/content-security-policy");

const USAGE: &str = "usage: cargo xtask dist";

/// `cargo xtask dist`: builds the release panel into `dist/` and prints how to serve it.
pub fn run(args: &[OsString], workspace: &Path) -> Result {
    if !args.is_empty() {
        return Err(Failure::new(USAGE));
    }
    panel::build(workspace, false)?;
    let dist = workspace.join("dist");
    println!("\nThe panel is in {}:", dist.display());
    let mut files: Vec<_> = fs::read_dir(&dist)
        .map_err(|e| Failure::new(format!("cannot read {}: {e}", dist.display())))?
        .flatten()
        .map(|e| {
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            (e.file_name().to_string_lossy().into_owned(), size)
        })
        .collect();
    files.sort();
    for (name, size) in files {
        println!("  {name:<40} {:>9.1} KB", size as f64 / 1000.0);
    }
    println!(
        "\nServe it from any web server (README, \"Deploying the panel\"), with this header, BROKER \
         being your broker's wss:// URL:\n  Content-Security-Policy: {}",
        CSP.trim()
    );
    Ok(())
}

/// Moves every inline script of `dist/index.html` into a file of its own (`init-<sha256>.js`)
/// and fails if anything else inline is left.
pub fn externalize_inline_scripts(dist: &Path) -> Result {
    let index = dist.join("index.html");
    let html = fs::read_to_string(&index)
        .map_err(|e| Failure::new(format!("cannot read {}: {e}", index.display())))?;
    let mut out = String::with_capacity(html.len());
    let mut rest = html.as_str();
    while let Some(start) = rest.find("<script") {
        let open_end = rest[start..]
            .find('>')
            .map(|i| start + i + 1)
            .ok_or_else(|| Failure::new("index.html: a <script> tag does not close"))?;
        let close = rest[open_end..]
            .find("</script>")
            .map(|i| open_end + i)
            .ok_or_else(|| Failure::new("index.html: a <script> has no </script>"))?;
        let tag = &rest[start..open_end];
        let body = &rest[open_end..close];
        out.push_str(&rest[..start]);
        if tag.contains(" src=") || body.trim().is_empty() {
            out.push_str(&rest[start..close + "</script>".len()]);
        } else {
            let name = format!("init-{}.js", &sha256_hex(body.as_bytes())?[..16]);
            fs::write(dist.join(&name), body.trim())
                .map_err(|e| Failure::new(format!("cannot write {name}: {e}")))?;
            let kind = if tag.contains("type=\"module\"") {
                " type=\"module\""
            } else {
                ""
            };
            out.push_str(&format!("<script{kind} src=\"/{name}\"></script>"));
        }
        rest = &rest[close + "</script>".len()..];
    }
    out.push_str(rest);
    if let Some(inline) = inline_left(&out) {
        return Err(Failure::new(format!(
            "dist/index.html still has {inline}, which a strict Content Security Policy refuses"
        )));
    }
    fs::write(&index, out).map_err(|e| Failure::new(format!("cannot write index.html: {e}")))
}

/// What a policy without `'unsafe-inline'` would refuse in `html`, if anything.
fn inline_left(html: &str) -> Option<&'static str> {
    let lower = html.to_ascii_lowercase();
    if lower.contains("<style") {
        return Some("a <style> element");
    }
    if lower.contains(" style=") {
        return Some("a style= attribute");
    }
    if lower.contains("javascript:") {
        return Some("a javascript: URL");
    }
    let handler = lower.match_indices(" on").any(|(i, _)| {
        let word: String = lower[i + 3..]
            .chars()
            .take_while(char::is_ascii_alphabetic)
            .collect();
        !word.is_empty() && lower[i + 3 + word.len()..].starts_with('=')
    });
    handler.then_some("an inline event handler (on...=)")
}

/// The SHA-256 of `bytes` in hex, from coreutils' `sha256sum` (xtask uses the standard library
/// only, so that it builds in seconds on a fresh machine).
fn sha256_hex(bytes: &[u8]) -> Result<String> {
    use std::io::Write;
    let mut child = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| Failure::new(format!("cannot run sha256sum: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(bytes)
            .map_err(|e| Failure::new(format!("sha256sum: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Failure::new(format!("sha256sum: {e}")))?;
    let hex = String::from_utf8_lossy(&out.stdout);
    let hex = hex.split_whitespace().next().unwrap_or_default();
    if !out.status.success() || hex.len() != 64 {
        return Err(Failure::new("sha256sum gave no digest"));
    }
    Ok(hex.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_scripts_move_to_files_named_by_their_digest() {
        let dir = std::env::temp_dir().join(format!("xtask-dist-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("index.html"),
            "<html><head><link rel=\"modulepreload\" href=\"/app.js\">\
             <script type=\"module\">import init from '/app.js'; await init();</script>\
             <script src=\"/other.js\"></script></head><body></body></html>",
        )
        .unwrap();
        externalize_inline_scripts(&dir).unwrap();
        let html = fs::read_to_string(dir.join("index.html")).unwrap();
        assert!(!html.contains("import init"), "{html}");
        assert!(
            html.contains("<script src=\"/other.js\"></script>"),
            "{html}"
        );
        let start = html.find("src=\"/init-").unwrap() + "src=\"/".len();
        let name = &html[start..start + "init-0123456789abcdef.js".len()];
        assert_eq!(
            fs::read_to_string(dir.join(name)).unwrap(),
            "import init from '/app.js'; await init();"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn anything_else_inline_is_named() {
        assert_eq!(inline_left("<div style=\"x\">"), Some("a style= attribute"));
        assert_eq!(
            inline_left("<body onload=\"go()\">"),
            Some("an inline event handler (on...=)")
        );
        assert_eq!(inline_left("<link rel=\"icon\" href=\"data:,\" />"), None);
    }
}
