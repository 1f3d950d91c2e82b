//! Sentry webhook bodies through `intake::sentry::parse`, and the keys intake derives from the
//! result.
//!
//! Input layout: the `Sentry-Hook-Resource` header value, a newline, then the raw body. An empty
//! first line, or no newline at all, stands for the legacy WebHooks plugin (it sends no header).
#![no_main]

use libfuzzer_sys::fuzz_target;
use paiid_alerts::testing::intake::{self, sentry};

fuzz_target!(|data: &[u8]| {
    let (resource, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (
            String::from_utf8_lossy(&data[..i]).into_owned(),
            &data[i + 1..],
        ),
        None => (String::new(), data),
    };
    let resource = (!resource.is_empty()).then_some(resource.as_str());
    let Ok(facts) = sentry::parse(resource, body) else {
        return;
    };
    // The link is shown in Slack, mail and our pages: it must never be anything but http(s).
    if let Some(url) = &facts.web_url {
        let url = url.trim_start().to_ascii_lowercase();
        assert!(
            url.starts_with("https://") || url.starts_with("http://"),
            "web_url {url:?}"
        );
    }
    if let Some(metric) = &facts.metric {
        let _ = (metric.is_transaction_duration(), metric.is_apdex());
        if let Some(value) = metric.value {
            assert!(value.is_finite(), "metric value {value}");
        }
    }
    let _ = intake::dedup_key(&facts, body);
    let _ = facts.incident_key();
    let _ = facts.meaning().as_str();
});
