//! Reads what [`classification::explain`](crate::classification::explain) needs from the store
//! (recent occurrences for the rate windows, the silences in force) for `POST /api/explain` and
//! `paiid-alerts explain`. The explanation itself stays pure.

use std::path::Path;

use crate::classification::explain::{Explanation, Occurrence, explain};
use crate::config::RoutingConfig;
use crate::intake::sentry::{self, ParseError};
use crate::store::{Reader, StoreError};

#[derive(Debug, thiserror::Error)]
pub(crate) enum ExplainError {
    #[error("the payload is not a Sentry webhook payload: {0}")]
    Payload(#[from] ParseError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Explains `body` (sent with `Sentry-Hook-Resource: resource`) as the running service would
/// classify it at `now_ms`, counting the database's recent occurrences and matching its
/// silences (read through `store`, the service's reader or a read-only one).
/// Without a store, rates count this payload alone and silences are reported as not checked.
pub(crate) async fn explain_payload(
    cfg: &RoutingConfig,
    store: Option<&Reader>,
    resource: Option<&str>,
    body: &[u8],
    now_ms: i64,
) -> Result<Explanation, ExplainError> {
    let facts = sentry::parse(resource, body)?;
    let Some(store) = store else {
        return Ok(explain(
            cfg,
            &facts,
            &[],
            Err("no database: silences not checked (and rates count this payload alone)".into()),
            now_ms,
        ));
    };
    let longest = cfg
        .rules
        .iter()
        .filter_map(|r| r.when.rate.as_ref().map(|rate| rate.within.as_millis_i64()))
        .max()
        .unwrap_or(0);
    let mut conn = store.acquire().await.map_err(StoreError::from)?;
    let mut recent: Vec<Occurrence> = Vec::new();
    if longest > 0 {
        let since = now_ms - longest;
        for ((_, resource, body), at) in
            crate::store::incidents::recent_occurrences(&mut conn, store.corrupt(), since).await?
        {
            // Logged and counted as a corrupt row by the read; the writer skips it too.
            let Ok(body) = body else { continue };
            // Stored as the writer stores them: `legacy` for the plugin's payloads.
            let resource = (resource != "legacy").then_some(resource);
            if let Ok(f) = sentry::parse(resource.as_deref(), &body) {
                recent.push((f, at));
            }
        }
    }
    let silences = crate::store::silences::active(&mut conn, store.corrupt(), now_ms).await?;
    Ok(explain(cfg, &facts, &recent, Ok(&silences), now_ms))
}

/// `paiid-alerts explain`: the text form. `database_url` is used only when its file exists
/// (explaining must not create an empty database), and only read: it may be the live
/// service's, so it is never migrated or written (see [`Reader::open_read_only`]).
pub async fn explain_file(
    payload: &Path,
    resource: Option<&str>,
    config: &Path,
    database_url: Option<&str>,
) -> anyhow::Result<String> {
    let cfg = RoutingConfig::load(config)?;
    let body = std::fs::read(payload)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", payload.display()))?;
    let resource = resource
        .map(str::to_string)
        .or_else(|| resource_from_file_name(payload));
    let store = match database_url.filter(|u| sqlite_file_exists(u)) {
        Some(url) => Some(Reader::open_read_only(url).await?),
        None => None,
    };
    let now = chrono::Utc::now().timestamp_millis();
    let result = explain_payload(&cfg, store.as_ref(), resource.as_deref(), &body, now).await;
    if let Some(s) = store {
        s.close().await;
    }
    let e = result?;
    let mut out = format!(
        "{} (resource: {}, rules: {})\n\n",
        payload.display(),
        resource
            .as_deref()
            .unwrap_or("none: legacy WebHooks plugin"),
        config.display()
    );
    out.push_str(&e.to_text());
    Ok(out)
}

/// Sentry's resources, for a file saved as Sentry's docs and our fixtures name them
/// (`event_alert.triggered.1.json`); anything else is read as the legacy plugin's payload.
fn resource_from_file_name(path: &Path) -> Option<String> {
    const RESOURCES: &[&str] = &[
        "event_alert",
        "metric_alert",
        "issue",
        "error",
        "installation",
        "comment",
        "seer",
    ];
    let name = path.file_name()?.to_str()?;
    let first = name.split('.').next()?;
    RESOURCES.contains(&first).then(|| first.to_string())
}

fn sqlite_file_exists(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or(url.strip_prefix("sqlite:"))
    else {
        return false;
    };
    let path = rest.split('?').next().unwrap_or(rest);
    !path.is_empty() && path != ":memory:" && Path::new(path).is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resource_comes_from_a_sentry_style_file_name_only() {
        let r = |p: &str| resource_from_file_name(Path::new(p));
        assert_eq!(
            r("/x/event_alert.triggered.1.json").as_deref(),
            Some("event_alert")
        );
        assert_eq!(r("metric_alert.json").as_deref(), Some("metric_alert"));
        assert_eq!(r("legacy_webhook.1.json"), None);
        assert_eq!(r("payload.json"), None);
    }

    #[test]
    fn only_an_existing_sqlite_file_counts_as_a_database() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        let url = format!("sqlite://{}", db.display());
        assert!(!sqlite_file_exists(&url));
        std::fs::write(&db, b"").unwrap();
        assert!(sqlite_file_exists(&url));
        assert!(sqlite_file_exists(&format!("{url}?mode=rwc")));
        assert!(!sqlite_file_exists("postgres://x"));
        assert!(!sqlite_file_exists("sqlite::memory:"));
    }
}
