//! The on-call web page: lists incidents, and acknowledges or resolves through a form that asks
//! for a name. With `API_TOKEN` set the pages want HTTP Basic sign-in (token as password), as the
//! API wants the bearer token; scripts may give the token as a form field instead.

mod support;

use paiid_alerts::testing::settings::Secrets;
use serde_json::Value;
use support::*;

#[tokio::test]
async fn web_page_lists_and_acknowledges_with_the_api_token() {
    let app = spawn_with(AppOptions {
        secrets: Secrets {
            api_token: secret("t0ken"),
            ..Secrets::default()
        },
        run_workers: false,
        ..AppOptions::default()
    })
    .await;
    let r = app
        .post_sentry(
            Some("event_alert"),
            &fixture("event_alert.triggered.4.json"),
        )
        .await;
    let id = r.json::<Value>().await.unwrap()["incident_id"]
        .as_i64()
        .unwrap();

    // Not signed in: the browser is asked for credentials, and nothing is shown.
    for path in ["/".to_string(), format!("/incidents/{id}")] {
        let r = app.client.get(app.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        assert_eq!(
            r.headers()["www-authenticate"],
            "Basic realm=\"paiid-alerts\", charset=\"UTF-8\""
        );
        let body = r.text().await.unwrap();
        assert!(
            !body.contains("href=\"/incidents/") && !body.contains("Timeline"),
            "{body}"
        );
        let r = app
            .client
            .get(app.url(&path))
            .basic_auth("ana", Some("wrong"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }

    let index = app
        .client
        .get(app.url("/"))
        .basic_auth("ana", Some("t0ken"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        index.contains(&format!("/incidents/{id}")) && index.contains("critical"),
        "{index}"
    );
    let page = app
        .client
        .get(app.url(&format!("/incidents/{id}")))
        .basic_auth("ana", Some("t0ken"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("name=\"by\" placeholder=\"Your name\" value=\"ana\"")
            && page.contains("Acknowledge"),
        "{page}"
    );
    assert!(!page.contains("<script"));

    let ack = app.url(&format!("/incidents/{id}/ack"));
    let r = app
        .client
        .post(&ack)
        .form(&[("by", "ana"), ("api_token", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .client
        .post(&ack)
        .basic_auth("ana", Some("wrong"))
        .form(&[("by", "ana")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Signed in, but sent by another site's page (the browser adds the credentials anyway).
    for (header, value) in [
        ("Origin", "https://evil.example"),
        ("Origin", "null"),
        ("Sec-Fetch-Site", "cross-site"),
    ] {
        let r = app
            .client
            .post(&ack)
            .basic_auth("ana", Some("t0ken"))
            .header(header, value)
            .form(&[("by", "ana")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{header}: {value}");
    }
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM incidents WHERE state = 'triggered'")
            .await,
        1,
        "a forged post changes nothing"
    );
    let r = app
        .client
        .post(&ack)
        .form(&[("by", ""), ("api_token", "t0ken")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = app
        .client
        .post(&ack)
        .basic_auth("ana", Some("t0ken"))
        .header("Origin", format!("http://{}", app.addr))
        .header("Sec-Fetch-Site", "same-origin")
        .form(&[("by", "ana")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Acknowledged"));

    let inc: Value = app
        .client
        .get(app.url(&format!("/api/incidents/{id}")))
        // The page's JSON link works for a browser signed in to the pages.
        .basic_auth("ana", Some("t0ken"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(inc["state"], "acknowledged");
    assert_eq!(inc["acknowledged_via"], "web");
    assert!(
        inc["next_escalation_at"].is_null(),
        "the timer is cancelled"
    );

    // Pages are never framed (a framed page could be clicked into acknowledging) and run no
    // script.
    let r = app
        .client
        .get(app.url(&format!("/incidents/{id}")))
        .basic_auth("ana", Some("t0ken"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");

    // Reading the API with the browser's sign-in works; acting needs the bearer token, which a
    // browser never adds by itself to a request a hostile page makes.
    let r = app
        .client
        .post(app.url("/api/test-alert"))
        .basic_auth("ana", Some("t0ken"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .client
        .post(app.url(&format!("/api/incidents/{id}/resolve")))
        .basic_auth("ana", Some("t0ken"))
        .json(&serde_json::json!({ "by": "ana" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let r = app
        .client
        .post(app.url("/incidents/999/ack"))
        .form(&[("by", "ana"), ("api_token", "t0ken")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
