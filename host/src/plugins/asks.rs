//! What a plugin asks for (its metadata's `asks`) against what the
//! manifest grants it. Asking grants nothing: an ask the manifest does not
//! cover stays denied, and `keel run` says so when the plugin is added.

use super::LoadedPlugin;
use crate::spec::PluginGrants;
use crate::spec::plugin_meta::Asks;

/// One ask and whether the manifest grants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AskOutcome {
    /// `subjects`, `sockets` or `outgoing_http`.
    pub kind: &'static str,
    /// The pattern asked for.
    pub asked: String,
    /// Whether a grant covers it.
    pub granted: bool,
}

/// Each ask of `asks`, granted or not by `grants`. A subject ask is
/// granted when a grant is the same pattern or a wider one token by token
/// (`$KV.>` covers `$KV.ORDERS.>`); sockets and hosts when written the
/// same.
pub fn compare(asks: &Asks, grants: &PluginGrants) -> Vec<AskOutcome> {
    let mut outcomes = Vec::new();
    for asked in &asks.subjects {
        let granted = grants.subjects.iter().any(|g| subject_covers(g, asked));
        outcomes.push(AskOutcome {
            kind: "subjects",
            asked: asked.clone(),
            granted,
        });
    }
    for (kind, asked, given) in [
        ("sockets", &asks.sockets, &grants.sockets),
        ("outgoing_http", &asks.outgoing_http, &grants.outgoing_http),
    ] {
        for ask in asked {
            outcomes.push(AskOutcome {
                kind,
                asked: ask.clone(),
                granted: given.contains(ask),
            });
        }
    }
    outcomes
}

/// What the manifest grants, in one line (`subjects a.>; sockets …`), or
/// `nothing`.
pub fn grants_line(grants: &PluginGrants) -> String {
    let parts: Vec<String> = [
        ("subjects", &grants.subjects),
        ("sockets", &grants.sockets),
        ("listen", &grants.listen),
        ("outgoing_http", &grants.outgoing_http),
    ]
    .into_iter()
    .filter(|(_, list)| !list.is_empty())
    .map(|(what, list)| format!("{what} {}", list.join(", ")))
    .collect();
    if parts.is_empty() {
        "nothing".to_string()
    } else {
        parts.join("; ")
    }
}

/// Whether subject pattern `grant` matches everything pattern `ask` does.
fn subject_covers(grant: &str, ask: &str) -> bool {
    let mut asked = ask.split('.');
    for token in grant.split('.') {
        match (token, asked.next()) {
            (">", Some(_)) => return true,
            ("*", Some(a)) if a != ">" => {}
            (g, Some(a)) if g == a => {}
            _ => return false,
        }
    }
    asked.next().is_none()
}

/// Logs, for a plugin just added, what it asks for against what it was
/// granted: one line per ask (a warning for each left denied), or a note
/// that it carries no metadata.
pub fn log(plugin: &LoadedPlugin) {
    let name = plugin.spec.name.as_str();
    let granted = grants_line(&plugin.spec.grants);
    let Some(meta) = &plugin.metadata else {
        tracing::info!(
            plugin = name,
            granted,
            "plugin carries no metadata (`keel-plugin` section): what it needs is not known"
        );
        return;
    };
    tracing::info!(
        plugin = name,
        version = meta.version,
        asks = meta.asks_line(),
        granted,
        "plugin `{name}`: {}",
        meta.description
    );
    if meta.mode != plugin.spec.mode {
        tracing::info!(
            plugin = name,
            "plugin is meant for {} mode, the manifest links it {}",
            meta.mode.as_str(),
            plugin.spec.mode.as_str()
        );
    }
    for outcome in compare(&meta.asks, &plugin.spec.grants) {
        if outcome.granted {
            tracing::info!(
                plugin = name,
                "plugin asks for {} `{}`: granted",
                outcome.kind,
                outcome.asked
            );
        } else {
            tracing::warn!(
                plugin = name,
                "plugin asks for {} `{}`: not granted by the manifest, stays denied",
                outcome.kind,
                outcome.asked
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wider_subjects_cover_narrower_ones() {
        assert!(subject_covers("$KV.>", "$KV.ORDERS.>"));
        assert!(subject_covers("$KV.*.a", "$KV.ORDERS.a"));
        assert!(subject_covers("a.b", "a.b"));
        assert!(!subject_covers("$KV.*", "$KV.ORDERS.>"));
        assert!(!subject_covers("$KV.ORDERS.>", "$KV.>"));
        assert!(!subject_covers("a.b", "a.b.c"));
    }

    #[test]
    fn an_ask_not_granted_is_reported() {
        let asks = Asks {
            subjects: vec!["x.>".into()],
            sockets: vec!["127.0.0.1:6379".into()],
            outgoing_http: vec![],
        };
        let grants = PluginGrants {
            subjects: vec![">".into()],
            ..PluginGrants::default()
        };
        let outcomes = compare(&asks, &grants);
        assert!(outcomes[0].granted);
        assert!(!outcomes[1].granted);
        assert_eq!(outcomes[1].kind, "sockets");
    }
}
