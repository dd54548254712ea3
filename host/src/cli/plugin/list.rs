//! `keel plugin list`: the built-in plugins and what their metadata says.

use crate::spec::builtin;
use crate::spec::plugin_meta::PluginMetadata;
use anyhow::{Context, Result};
use std::fmt::Write as _;

/// The text `keel plugin list` prints.
pub fn report() -> Result<String> {
    let mut out = String::new();
    for name in builtin::names() {
        let Some((mode, bytes)) = builtin::builtin(name) else {
            continue;
        };
        let default_of = builtin::default_of(name).map_or("", |d| d.describe());
        let metadata =
            PluginMetadata::read(bytes).with_context(|| format!("built-in plugin `{name}`"))?;
        let Some(meta) = metadata else {
            let _ = writeln!(
                out,
                "{name}  ({} mode, {default_of}; carries no metadata)\n",
                mode.as_str()
            );
            continue;
        };
        let state = if meta.keeps_state {
            "keeps state"
        } else {
            "keeps no state"
        };
        let _ = writeln!(
            out,
            "{name} {}  ({} mode, {state}, {default_of})",
            meta.version,
            mode.as_str()
        );
        let _ = writeln!(out, "  {}", meta.description);
        let _ = writeln!(out, "  serves: {}", meta.interfaces.join(", "));
        let _ = writeln!(out, "  asks: {}", meta.asks_line());
        for key in &meta.config {
            let default = key
                .default
                .as_ref()
                .map(|d| format!(" (default {d:?})"))
                .unwrap_or_default();
            let _ = writeln!(out, "  config {}{default}: {}", key.key, key.description);
        }
        out.push('\n');
    }
    Ok(out)
}
