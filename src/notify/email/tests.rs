use super::*;
use crate::domain::{DeliveryId, EventId};

fn channel(url: &str) -> Result<EmailChannel, EmailConfigError> {
    EmailChannel::new(
        "oncall-email".into(),
        vec![
            "trading-ops@paiid.ai".into(),
            "Manager <em@paiid.ai>".into(),
        ],
        url,
        "paiid-alerts <alerts@paiid.ai>".into(),
        Duration::from_secs(5),
        Arc::new(Templates::defaults()),
    )
}

#[test]
fn accepts_the_documented_url_forms() {
    for url in [
        "smtp://127.0.0.1:2525",
        "smtps://user:pass@smtp.example.com:465",
        "smtp://user:pass@smtp.example.com:587?tls=required",
        "smtp://smtp.example.com:587?tls=opportunistic",
    ] {
        let c = channel(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(c.kind(), ChannelKind::Email);
        assert_eq!(c.rate_key(), "email:oncall-email");
        assert_eq!(c.recipients(), ["trading-ops@paiid.ai", "em@paiid.ai"]);
    }
}

#[tokio::test]
async fn bad_urls_never_echo_the_password() {
    for url in [
        "smtpx://user:hunter2@host:25",
        "smtp://user:hunter2@host:25?tls=maybe",
        "user:hunter2@host:25",
        "smtps://user:hunter2@:465",
        "smtp://user:hun%40ter2@[::1:25",
    ] {
        let e = channel(url).unwrap_err();
        let shown = e.to_string();
        assert!(
            !shown.contains("hunter2")
                && !shown.contains("hun@ter2")
                && !shown.contains("hun%40ter2"),
            "{shown}"
        );
        assert!(shown.contains("oncall-email"), "{shown}");
        assert!(matches!(e, EmailConfigError::InvalidUrl { .. }), "{shown}");
    }
    let c = channel("smtps://user:hunter2@smtp.example.com:465").unwrap();
    let debug = format!("{c:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(
        debug.contains("smtps://user:[REDACTED]@smtp.example.com:465"),
        "{debug}"
    );
}

#[test]
fn bad_addresses_are_named() {
    let e = EmailChannel::new(
        "x".into(),
        vec!["ok@paiid.ai".into(), "not an address".into()],
        "smtp://127.0.0.1:25",
        "alerts@paiid.ai".into(),
        Duration::from_secs(1),
        Arc::new(Templates::defaults()),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("invalid to address \"not an address\""),
        "{e}"
    );
    let e = EmailChannel::new(
        "x".into(),
        vec![],
        "smtp://127.0.0.1:25",
        "alerts@paiid.ai".into(),
        Duration::from_secs(1),
        Arc::new(Templates::defaults()),
    )
    .unwrap_err();
    assert!(matches!(e, EmailConfigError::NoRecipients { .. }));
    let e = EmailChannel::new(
        "x".into(),
        vec!["a@b.co".into()],
        "smtp://127.0.0.1:25",
        "@".into(),
        Duration::from_secs(1),
        Arc::new(Templates::defaults()),
    )
    .unwrap_err();
    assert!(e.to_string().contains("invalid from address"), "{e}");
}

#[test]
fn redacts_url_passwords() {
    assert_eq!(
        redact_url_password("smtp://127.0.0.1:2525"),
        "smtp://127.0.0.1:2525"
    );
    assert_eq!(
        redact_url_password("smtps://u:p@ss/w@host:465"),
        "smtps://u:[REDACTED]@host:465"
    );
    assert_eq!(redact_url_password("smtp://u@host"), "smtp://u@host");
    assert_eq!(redact_url_password("u:p@host"), "u:[REDACTED]@host");
    assert_eq!(
        scrub_password("bad hun@ter2 x", "smtp://u:hun%40ter2@h"),
        "bad [REDACTED] x"
    );
}

#[test]
fn message_id_follows_the_delivery() {
    let c = channel("smtp://127.0.0.1:2525").unwrap();
    let message_id = |n: &Notification| {
        let raw = c.build_message(n).unwrap();
        let raw = String::from_utf8_lossy(&raw).into_owned();
        raw.lines()
            .find_map(|l| l.strip_prefix("Message-ID: "))
            .map(str::to_string)
            .unwrap_or_default()
    };
    let mut n = Notification::test_message(chrono::Utc::now());
    n.delivery = Some(DeliveryRef {
        id: DeliveryId(17),
        created_at: 1_780_000_000_000,
    });
    let first = message_id(&n);
    assert_eq!(first, "<delivery-17.1780000000000@paiid.ai>");
    assert_eq!(message_id(&n), first, "every attempt is the same message");
    n.delivery = Some(DeliveryRef {
        id: DeliveryId(18),
        created_at: 1_780_000_000_000,
    });
    assert_ne!(message_id(&n), first);
    // The same row id in a new database is another message.
    n.delivery = Some(DeliveryRef {
        id: DeliveryId(17),
        created_at: 1_790_000_000_000,
    });
    assert_ne!(message_id(&n), first);
    // No delivery (send-test): still a Message-ID, a fresh one each time.
    n.delivery = None;
    let (a, b) = (message_id(&n), message_id(&n));
    assert!(a.starts_with('<') && a != b, "{a} {b}");
}

#[test]
fn a_bundle_retried_with_more_rows_is_a_new_mail() {
    use crate::notify::bundle::Bundle;
    let c = channel("smtp://127.0.0.1:2525").unwrap();
    let row = |id: i64| {
        let mut n = Notification::test_message(chrono::Utc::now());
        n.delivery = Some(DeliveryRef {
            id: DeliveryId(id),
            created_at: 1_780_000_000_000,
        });
        n
    };
    let message_id = |members: &[Notification]| {
        let b = Bundle {
            members,
            more: 0,
            card: None,
        };
        let raw = String::from_utf8(c.build_bundle(&b).unwrap()).unwrap();
        raw.lines()
            .find_map(|l| l.strip_prefix("Message-ID: "))
            .map(str::to_string)
            .unwrap_or_default()
    };
    let two = [row(17), row(18)];
    let first = message_id(&two);
    assert!(first.starts_with("<bundle-"), "{first}");
    assert_eq!(message_id(&two), first, "the same rows: the same mail");
    let three = [row(17), row(18), row(19)];
    assert_ne!(message_id(&three), first, "more rows: a new mail");
}

#[test]
fn a_notice_is_a_short_mail_about_no_incident() {
    use crate::notify::notice::{Notice, UnreadablePayload};
    let c = channel("smtp://127.0.0.1:2525").unwrap();
    let mut notice = Notice::unreadable_payload(
        UnreadablePayload {
            resource: "event_alert".into(),
            shape: String::new(),
            reason: "`data.event` is missing".into(),
            event_id: EventId(7),
            received_at: 1_780_000_000_000,
        },
        "https://alerts.paiid.ai",
    );
    notice.delivery = Some(DeliveryRef {
        id: DeliveryId(9),
        created_at: 1_780_000_000_000,
    });
    let raw = String::from_utf8(c.build_notice(&notice).unwrap()).unwrap();
    let header = |name: &str| {
        raw.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .map(str::to_string)
    };
    assert_eq!(
        header("Subject").as_deref(),
        Some("Sentry sent an `event_alert` we could not read")
    );
    assert_eq!(
        header("X-PaiiD-Kind").as_deref(),
        Some("unreadable_payload")
    );
    assert_eq!(
        header("Message-ID").as_deref(),
        Some("<delivery-9.1780000000000@paiid.ai>")
    );
    assert_eq!(header("Auto-Submitted").as_deref(), Some("auto-generated"));
    // Not an incident: no incident headers, no incident thread.
    assert!(header("X-PaiiD-Incident").is_none(), "{raw}");
    assert!(header("References").is_none(), "{raw}");
    assert!(
        raw.contains("On-call page: https://alerts.paiid.ai/"),
        "{raw}"
    );
}
