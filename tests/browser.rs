//! The on-call pages in a real browser: Debian's `chromium`, driven over WebDriver
//! (`chromedriver`, started here on a free loopback port) with `fantoccini`.
//!
//! The real application runs on loopback with a manual clock; a realistic mix of incidents comes
//! in as signed Sentry webhooks built from the real fixtures. The browser opens `/`, checks the
//! urgency order and the escalation countdown, acknowledges through the page's button, sees the
//! state change, opens the incident page with its deliveries, `/overview`, `/deliveries` and
//! `/silences`. The countdown is read twice, 2.5 s apart, to see `app.js` tick it; every page is
//! measured on a 400 px screen for sideways overflow. Screenshots go to `target/screenshots/`
//! (index.png, index-phone-400px.png, incident.png, incident-phone-400px.png, overview.png,
//! overview-phone-400px.png, deliveries.png, deliveries-phone-400px.png, silences.png,
//! silences-phone-400px.png).
//!
//! Without chromium or chromedriver the test fails under CI (`CI=true`, where `.ci/run` installs
//! them) and prints SKIPPED elsewhere.

mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use support::seed::*;
use support::*;

const MINUTE: i64 = 60_000;

/// Where `name` is on `PATH`.
fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// The browser and its driver, or why the test cannot run.
fn browser() -> Result<(PathBuf, PathBuf), String> {
    let chromium = which("chromium").ok_or("`chromium` is not on PATH")?;
    let driver = which("chromedriver").ok_or("`chromedriver` is not on PATH")?;
    Ok((chromium, driver))
}

/// The chromedriver process: killed and reaped when dropped, also when the test fails.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start(bin: &Path, log: &Path) -> Driver {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").expect("free port");
            l.local_addr().expect("addr").port()
        };
        let log = std::fs::File::create(log).expect("driver log");
        let child = Command::new(bin)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start chromedriver");
        Driver { child, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Until `/status` says ready (chromedriver takes a moment to listen).
    async fn wait_ready(&mut self) {
        let client = paiid_alerts::testing::http_client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("client");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!("chromedriver exited at start: {status}");
            }
            if let Ok(r) = client.get(format!("{}/status", self.url())).send().await
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == true
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver not ready in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn screenshots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_path("target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshots dir");
    dir
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "{name} is not a PNG");
    let path = screenshots_dir().join(name);
    std::fs::write(&path, png).expect("write screenshot");
    eprintln!("screenshot: {}", path.display());
}

/// Sets the page's viewport (not the window's outer size) to `width` x `height`.
async fn viewport(c: &Client, width: i64, height: i64) {
    c.set_window_size(width as u32, height as u32)
        .await
        .expect("resize");
    let inner = c
        .execute("return [window.innerWidth, window.innerHeight];", vec![])
        .await
        .expect("inner size");
    let (w, h) = (
        inner[0].as_i64().unwrap_or(width),
        inner[1].as_i64().unwrap_or(height),
    );
    if (w, h) != (width, height) {
        c.set_window_size((2 * width - w) as u32, (2 * height - h) as u32)
            .await
            .expect("resize");
    }
}

async fn attr(e: &fantoccini::elements::Element, name: &str) -> String {
    e.attr(name)
        .await
        .expect("attr")
        .unwrap_or_else(|| panic!("no {name} attribute"))
}

/// What the browser shows as the rows of the open incidents, in order: (id, severity, state).
async fn open_rows(c: &Client) -> Vec<(i64, String, String)> {
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("table#open-incidents"))
        .await
        .expect("table#open-incidents on /");
    let mut rows = Vec::new();
    for tr in c
        .find_all(Locator::Css("table#open-incidents tr.incident"))
        .await
        .expect("rows")
    {
        rows.push((
            attr(&tr, "data-id").await.parse().expect("numeric id"),
            attr(&tr, "data-severity").await,
            attr(&tr, "data-state").await,
        ));
    }
    rows
}

/// `12:34` (minutes and seconds) in `escalates in 12:34`, as seconds.
fn countdown_secs(text: &str) -> Option<i64> {
    let rest = text.trim().strip_prefix("escalates in ")?;
    let (m, s) = rest.trim().split_once(':')?;
    Some(m.trim().parse::<i64>().ok()? * 60 + s.trim().get(..2)?.parse::<i64>().ok()?)
}

/// The seeded mix and what the test expects of it.
struct Seeded {
    /// Triggered critical, opened first (the lowest id: newest-first would list it last).
    critical: i64,
    high: i64,
    acknowledged: i64,
    medium: i64,
    unclassified: i64,
    resolved: i64,
}

async fn seed(app: &TestApp) -> Seeded {
    let clock = &app.clock;
    let at = |m: i64| START_MS + m * MINUTE;
    clock.set(at(0));
    let (triggered, sev) = opened(
        &post_signed(
            app,
            "event_alert",
            &critical("3001", "c-1", "Order router down"),
        )
        .await,
    );
    assert_eq!(sev, "critical");
    clock.set(at(1));
    let (high, sev) =
        opened(&post_signed(app, "metric_alert", &slow_p95("601", "Slow checkout p95")).await);
    assert_eq!(sev, "high");
    clock.set(at(2));
    let (acknowledged, _) = opened(
        &post_signed(
            app,
            "event_alert",
            &critical("3002", "a-1", "Payments API 500s"),
        )
        .await,
    );
    clock.set(at(3));
    act(app, acknowledged, "ack", "bo", None).await;
    let (medium, sev) =
        opened(&post_signed(app, "metric_alert", &apdex_drop("602", "Apdex drop on web")).await);
    assert_eq!(sev, "medium");
    let (unclassified, sev) = opened(
        &post_signed(
            app,
            "event_alert",
            &info_message("u-1", "A test message from golang"),
        )
        .await,
    );
    assert_eq!(sev, "unclassified");
    let (resolved, _) = opened(
        &post_signed(
            app,
            "event_alert",
            &critical("3003", "r-1", "Cache node lost"),
        )
        .await,
    );
    clock.set(at(4));
    act(app, resolved, "resolve", "ana", None).await;
    clock.set(at(5));
    Seeded {
        critical: triggered,
        high,
        acknowledged,
        medium,
        unclassified,
        resolved,
    }
}

/// Attempts every due delivery, so that the incident page has attempts to show.
async fn drain_outbox(app: &TestApp) {
    let channels: Vec<String> = sqlx::query_scalar("SELECT DISTINCT channel FROM deliveries")
        .fetch_all(paiid_alerts::testing::read_pool(&app.state.store))
        .await
        .expect("channels");
    for ch in channels {
        while app.workers.outbox.step(&ch).await.expect("step")
            != paiid_alerts::testing::notify::worker::Step::Idle
        {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_call_pages_in_a_real_browser() {
    let (chromium, driver_bin) = match browser() {
        Ok(found) => found,
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{why}: .ci/run installs chromium and chromium-driver")
        }
        Err(why) => {
            eprintln!(
                "SKIPPED on_call_pages_in_a_real_browser: {why} (apt-get install chromium chromium-driver)"
            );
            return;
        }
    };
    let app = spawn_with(AppOptions {
        secrets: signed_secrets(),
        run_workers: false,
        ..AppOptions::default()
    })
    .await;
    let seeded = seed(&app).await;

    let mut driver = Driver::start(&driver_bin, &screenshots_dir().join("chromedriver.log"));
    driver.wait_ready().await;
    let profile = tempfile::tempdir().expect("profile dir");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new",
                // As root (CI), chromium refuses to start with its sandbox.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--window-size=1280,900",
                format!("--user-data-dir={}", profile.path().display()),
            ]
        }),
    );
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url())
        .await
        .expect("a WebDriver session with chromium");
    let version = client
        .execute("return navigator.userAgent;", vec![])
        .await
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .unwrap_or_default();
    eprintln!("browser: {version}");

    // The checks run as their own task so that a failed assertion still ends the browser
    // session (and chromium with it) before the driver guard stops chromedriver.
    let run = tokio::spawn(browse(client.clone(), app, seeded));
    let outcome = tokio::time::timeout(Duration::from_secs(240), run).await;
    let _ = client.close().await;
    drop(driver);
    match outcome {
        Err(_) => panic!("the browser test took longer than 240 s"),
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(Err(e)) => panic!("browser task: {e}"),
        Ok(Ok(())) => {}
    }
}

async fn browse(c: Client, app: TestApp, s: Seeded) {
    // `/`: urgency order, not newest first; the resolved incident is not among the open ones.
    c.goto(&app.url("/")).await.expect("open /");
    viewport(&c, 1280, 900).await;
    let rows = open_rows(&c).await;
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    assert_eq!(
        ids,
        [s.critical, s.high, s.acknowledged, s.medium, s.unclassified],
        "{rows:?}"
    );
    assert!(!ids.contains(&s.resolved));
    let states: Vec<(&str, &str)> = rows.iter().map(|r| (r.1.as_str(), r.2.as_str())).collect();
    assert_eq!(
        states,
        [
            ("critical", "triggered"),
            ("high", "triggered"),
            ("critical", "acknowledged"),
            ("medium", "triggered"),
            ("unclassified", "triggered"),
        ]
    );

    // The countdown: due 15 minutes after opening (critical's escalate_after), 10 minutes left
    // on the service's clock (the browser's own clock is not the service's).
    let row = |id: i64| format!("table#open-incidents tr.incident[data-id=\"{id}\"]");
    let countdown = c
        .find(Locator::Css(&format!("{} span.countdown", row(s.critical))))
        .await
        .expect("a countdown on the triggered critical row");
    assert_eq!(
        attr(&countdown, "data-due-ms").await,
        (START_MS + 15 * MINUTE).to_string()
    );
    let text = countdown.text().await.expect("countdown text");
    let left = countdown_secs(&text).unwrap_or_else(|| panic!("countdown reads {text:?}"));
    assert!((540..=600).contains(&left), "countdown reads {text:?}");
    let high_text = c
        .find(Locator::Css(&format!("{} span.countdown", row(s.high))))
        .await
        .expect("a countdown on the triggered high row")
        .text()
        .await
        .expect("text");
    let left =
        countdown_secs(&high_text).unwrap_or_else(|| panic!("countdown reads {high_text:?}"));
    // Opened at minute 1, escalates after 60: 56 minutes left at minute 5.
    assert!(
        (55 * 60..=56 * 60).contains(&left),
        "countdown reads {high_text:?}"
    );
    // app.js ticks it: on a fresh load (`/` reloads itself every 15 s, which would start it over),
    // read it, and again 2.5 s later (the service's clock stands still, the browser's runs): it
    // went down by the time that passed, to within the one-second tick.
    c.goto(&app.url("/")).await.expect("reload /");
    let countdown_now = || async {
        let text = c
            .find(Locator::Css(&format!("{} span.countdown", row(s.critical))))
            .await
            .expect("the countdown")
            .text()
            .await
            .expect("countdown text");
        countdown_secs(&text).unwrap_or_else(|| panic!("countdown reads {text:?}"))
    };
    let before = countdown_now().await;
    let started = std::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let after = countdown_now().await;
    let elapsed = started.elapsed().as_secs_f64();
    let ticked = (before - after) as f64;
    assert!(
        ticked >= 1.0 && (ticked - elapsed).abs() <= 1.5,
        "the countdown went from {before} s to {after} s in {elapsed:.1} s"
    );
    screenshot(&c, "index.png").await;

    // A phone: nothing wider than the screen.
    fits_a_phone(&c, &app.url("/"), "index-phone-400px.png").await;
    viewport(&c, 1280, 900).await;

    // Acknowledge through the page's button, on a fresh load: `/` reloads itself every 15 s
    // unless someone is typing, which a slow machine could otherwise run into here.
    c.goto(&app.url("/")).await.expect("open / to acknowledge");
    let form = c
        .find(Locator::Css(&format!("{} form.ack", row(s.critical))))
        .await
        .expect("an Acknowledge form on the triggered row");
    assert_eq!(
        attr(&form, "action").await,
        format!("/incidents/{}/ack", s.critical)
    );
    assert!(
        c.find_all(Locator::Css(&format!("{} form.ack", row(s.acknowledged))))
            .await
            .expect("find")
            .is_empty(),
        "no Acknowledge button on an acknowledged row"
    );
    // The form may ask who you are (no API_TOKEN sign-in here to fill it in).
    for input in form
        .find_all(Locator::Css("input[name=\"by\"]"))
        .await
        .expect("find")
    {
        if input
            .prop("value")
            .await
            .expect("value")
            .unwrap_or_default()
            .is_empty()
            && input.attr("type").await.expect("type").as_deref() != Some("hidden")
        {
            input.send_keys("carla").await.expect("type a name");
        }
    }
    let button = form
        .find(Locator::Css("button[type=\"submit\"]"))
        .await
        .expect("the submit button");
    assert!(button.text().await.expect("label").contains("Acknowledge"));
    button.click().await.expect("click Acknowledge");
    // The post's answer, then the list again.
    let inc = eventually(Duration::from_secs(10), || async {
        let inc = app.incident(s.critical).await;
        (inc["state"] == "acknowledged").then_some(inc)
    })
    .await;
    assert_eq!(inc["acknowledged_via"], "web", "{inc}");
    assert_eq!(inc["acknowledged_by"], "carla", "{inc}");
    // The browser shows the post's answer.
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(
            "//*[contains(normalize-space(.), 'Acknowledged. Escalation is stopped.')]",
        ))
        .await
        .expect("the acknowledgement's answer page");
    c.goto(&app.url("/")).await.expect("open / again");
    let rows = open_rows(&c).await;
    let acked = rows.iter().find(|r| r.0 == s.critical).expect("still open");
    assert_eq!(acked.2, "acknowledged", "{rows:?}");
    assert!(
        c.find_all(Locator::Css(&format!("{} form.ack", row(s.critical))))
            .await
            .expect("find")
            .is_empty(),
        "the button is gone once acknowledged"
    );

    // The incident page, after the outbox has sent what was due.
    drain_outbox(&app).await;
    // Tall enough for the screenshot to show the deliveries too.
    viewport(&c, 1280, 2400).await;
    c.goto(&app.url(&format!("/incidents/{}", s.critical)))
        .await
        .expect("open the incident");
    let state = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("span#state"))
        .await
        .expect("span#state");
    assert!(
        state.text().await.expect("state").contains("acknowledged"),
        "state reads {:?}",
        state.text().await
    );
    let deliveries = c
        .find_all(Locator::Css("table#deliveries tr.delivery"))
        .await
        .expect("find deliveries");
    assert!(
        !deliveries.is_empty(),
        "no delivery rows on the incident page"
    );
    let first = deliveries[0].text().await.expect("delivery text");
    assert!(
        first.contains("slack-alerts"),
        "first delivery reads {first:?}"
    );
    for css in [
        "section#event-details",
        "section#why",
        "nav#nav",
        "form#resolve textarea[name=\"root_cause\"]",
    ] {
        c.find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css} on the incident page: {e}"));
    }
    screenshot(&c, "incident.png").await;
    fits_a_phone(
        &c,
        &app.url(&format!("/incidents/{}", s.critical)),
        "incident-phone-400px.png",
    )
    .await;

    // The overview: drawn, with the seeded counts (5 opened today, 6 with the resolved one).
    viewport(&c, 1280, 1800).await;
    c.goto(&app.url("/overview")).await.expect("open /overview");
    let chart = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("section#per-day svg.chart"))
        .await
        .expect("the per-day chart");
    assert_eq!(attr(&chart, "data-total").await, "6");
    let today = c
        .find(Locator::Css("g.day[data-day=\"2026-05-28\"]"))
        .await
        .expect("today's bar");
    assert_eq!(attr(&today, "data-total").await, "6");
    let drawn = c
        .execute(
            "return document.querySelector('section#per-day svg.chart').getBoundingClientRect().width;",
            vec![],
        )
        .await
        .expect("chart width");
    assert!(
        drawn.as_f64().unwrap_or(0.0) > 300.0,
        "chart drawn {drawn} px wide"
    );
    c.find(Locator::Css("nav#nav"))
        .await
        .expect("the navigation header on /overview");
    screenshot(&c, "overview.png").await;

    fits_a_phone(&c, &app.url("/overview"), "overview-phone-400px.png").await;

    // /deliveries and /silences, with a silence listed (a long comment, as people write them).
    let r = app
        .client
        .post(app.url("/api/silences"))
        .json(&json!({
            "matchers": { "project": "python", "environment": "prod" },
            "duration": "2h",
            "author": "carla",
            "comment": "Maintenance of the order router: https://status.paiid.example/incidents/2026-05-28-order-router-maintenance-window",
        }))
        .send()
        .await
        .expect("post a silence");
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    viewport(&c, 1280, 900).await;
    c.goto(&app.url("/deliveries"))
        .await
        .expect("open /deliveries");
    c.find(Locator::Css("nav#nav"))
        .await
        .expect("the navigation header on /deliveries");
    screenshot(&c, "deliveries.png").await;
    fits_a_phone(&c, &app.url("/deliveries"), "deliveries-phone-400px.png").await;
    viewport(&c, 1280, 900).await;
    c.goto(&app.url("/silences")).await.expect("open /silences");
    let listed = c
        .find(Locator::Css("main"))
        .await
        .expect("main")
        .text()
        .await
        .expect("text");
    assert!(listed.contains("order-router-maintenance"), "{listed}");
    screenshot(&c, "silences.png").await;
    fits_a_phone(&c, &app.url("/silences"), "silences-phone-400px.png").await;
}

/// Opens `url` on a 400 px wide screen and checks that nothing is wider than the screen (no
/// sideways scrolling), then keeps a screenshot of the whole page's height.
async fn fits_a_phone(c: &Client, url: &str, shot: &str) {
    viewport(c, 400, 860).await;
    c.goto(url).await.expect("open on a phone");
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("nav#nav"))
        .await
        .expect("the page's navigation");
    let widths = c
        .execute(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth, \
             document.body.scrollWidth, document.documentElement.scrollHeight];",
            vec![],
        )
        .await
        .expect("widths");
    assert_eq!(widths[1], 400, "{url}: viewport {widths}");
    for (what, w) in [("document", &widths[0]), ("body", &widths[2])] {
        assert!(
            w.as_i64().unwrap_or(i64::MAX) <= 400,
            "{url} overflows a 400 px screen: {what} scrollWidth {w}"
        );
    }
    let height = widths[3].as_i64().unwrap_or(860).clamp(860, 4000);
    viewport(c, 400, height).await;
    screenshot(c, shot).await;
}
