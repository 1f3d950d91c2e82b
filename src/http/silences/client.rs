//! `paiid-alerts silence add|list|expire`: a client of the running service's
//! `/api/silences`, with `API_TOKEN` as bearer token (as `amtool` is a client of
//! Alertmanager). It holds no database handle, so it works against a service elsewhere.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::domain::SilenceId;

/// Where the service is and how to sign in.
#[derive(Debug, clap::Args)]
pub struct SilenceCli {
    /// Base URL of the running service.
    #[arg(
        long,
        env = "PAIID_ALERTS_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    url: String,
    /// The service's API_TOKEN (sent as `Authorization: Bearer`).
    #[arg(long, env = "API_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: SilenceCommand,
}

#[derive(Debug, clap::Subcommand)]
enum SilenceCommand {
    /// Create a silence: matching alerts are stored and counted but notify nobody and do not
    /// escalate until it ends. At least one matcher is required.
    Add(Box<AddArgs>),
    /// List silences, newest first.
    List {
        /// active, pending, expired or all.
        #[arg(long, default_value = "all")]
        state: String,
        /// Print the API's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Expire a silence now (it stays in the history); the incidents it held that are still
    /// unacknowledged are notified now.
    Expire {
        /// The silence's id (`7` or `#7`).
        id: String,
    },
}

/// `silence add`: the matchers, the window and who.
#[derive(Debug, clap::Args)]
struct AddArgs {
    /// The Sentry project, as the incident shows it.
    #[arg(long)]
    project: Option<String>,
    /// Sentry's environment (e.g. prod).
    #[arg(long)]
    environment: Option<String>,
    /// The routing.yaml rule that classified the alert.
    #[arg(long)]
    rule: Option<String>,
    /// critical, high, medium, low or unclassified.
    #[arg(long)]
    severity: Option<String>,
    /// Sentry's event level (error, warning, fatal, ...).
    #[arg(long)]
    level: Option<String>,
    /// A Sentry tag the alert must carry, as key=value (repeatable).
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    tags: Vec<String>,
    /// A regular expression searched in the incident title.
    #[arg(long)]
    title_regex: Option<String>,
    /// RFC 3339 time or epoch milliseconds (default: now).
    #[arg(long)]
    starts_at: Option<String>,
    /// RFC 3339 time or epoch milliseconds; or give --duration.
    #[arg(long, conflicts_with = "duration")]
    ends_at: Option<String>,
    /// How long from the start: 30m, 2h, 1d (default 2h).
    #[arg(long)]
    duration: Option<String>,
    /// Who to ask about this silence.
    #[arg(long, env = "USER")]
    author: String,
    /// Why, and until what.
    #[arg(long, default_value = "")]
    comment: String,
    /// A severity that pages anyway if an incident rises to it (repeatable).
    #[arg(long = "let-through", value_name = "SEVERITY")]
    let_through: Vec<String>,
}

/// Runs one `silence` command and prints its outcome. An answer other than 2xx is an error
/// carrying the service's `{code, detail}`.
pub async fn run_silence_cli(cli: SilenceCli) -> anyhow::Result<()> {
    let api = Api {
        client: crate::http_client::client().context("building the HTTP client")?,
        base: cli.url.trim_end_matches('/').to_string(),
        token: cli.token,
    };
    let text = match cli.command {
        SilenceCommand::Add(add) => add_silence(&api, *add).await?,
        SilenceCommand::List { state, json } => list_silences(&api, &state, json).await?,
        SilenceCommand::Expire { id } => expire_silence(&api, &id).await?,
    };
    print_out(&text)
}

/// Writes the command's output to stdout. A reader that went away (`silence list | head -3`)
/// is a normal end, as for other Unix tools, not a panic or a failure.
fn print_out(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match write!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("writing to stdout"),
        _ => Ok(()),
    }
}

/// Appends one line to a command's output.
fn line(out: &mut String, text: std::fmt::Arguments<'_>) {
    use std::fmt::Write;
    // Writing to a String cannot fail.
    let _ = out.write_fmt(text);
    out.push('\n');
}

/// The running service's API, as one caller signs in to it.
struct Api {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.client.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }
}

/// `silence add`: the silence created; its warnings (why it may hold nothing) go to stderr.
async fn add_silence(api: &Api, add: AddArgs) -> anyhow::Result<String> {
    let body = add_body(add)?;
    let answer = send(
        api.request(reqwest::Method::POST, "/api/silences")
            .json(&body),
    )
    .await?;
    let s = &answer["silence"];
    let mut out = String::new();
    line(
        &mut out,
        format_args!(
            "silence #{} created: {} from {} until {} ({})",
            s["id"],
            text(&s["matches"]),
            text(&s["starts_at"]),
            text(&s["ends_at"]),
            text(&s["state"]),
        ),
    );
    for w in answer["warnings"].as_array().into_iter().flatten() {
        use std::io::Write;
        // A closed stderr leaves nothing to tell.
        let _ = writeln!(std::io::stderr().lock(), "warning: {}", text(w));
    }
    Ok(out)
}

/// The `POST /api/silences` body for `silence add`'s arguments.
fn add_body(add: AddArgs) -> anyhow::Result<Value> {
    let AddArgs {
        project,
        environment,
        rule,
        severity,
        level,
        tags,
        title_regex,
        starts_at,
        ends_at,
        duration,
        author,
        comment,
        let_through,
    } = add;
    let mut tag_map = BTreeMap::new();
    for t in &tags {
        let (k, v) = t
            .split_once('=')
            .with_context(|| format!("--tag `{t}` is not KEY=VALUE"))?;
        tag_map.insert(k.to_string(), v.to_string());
    }
    let mut matchers = serde_json::Map::new();
    for (k, v) in [
        ("project", project),
        ("environment", environment),
        ("rule", rule),
        ("severity", severity),
        ("level", level),
        ("title_regex", title_regex),
    ] {
        if let Some(v) = v {
            matchers.insert(k.into(), Value::String(v));
        }
    }
    if !tag_map.is_empty() {
        matchers.insert("tags".into(), json!(tag_map));
    }
    Ok(json!({
        "matchers": matchers,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "duration": duration,
        "author": author,
        "comment": comment,
        "let_through": let_through,
    }))
}

/// `silence list`.
async fn list_silences(api: &Api, state: &str, json: bool) -> anyhow::Result<String> {
    let answer = send(api.request(
        reqwest::Method::GET,
        &format!("/api/silences?state={}", state.trim()),
    ))
    .await?;
    let mut out = String::new();
    if json {
        line(
            &mut out,
            format_args!("{}", serde_json::to_string_pretty(&answer)?),
        );
        return Ok(out);
    }
    let rows = answer["silences"].as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        line(&mut out, format_args!("no silences"));
    }
    for s in rows {
        let through = s["let_through"]
            .as_array()
            .filter(|a| !a.is_empty())
            .map(|a| {
                let words: Vec<String> = a.iter().map(text).collect();
                format!(" let_through={}", words.join(","))
            })
            .unwrap_or_default();
        line(
            &mut out,
            format_args!(
                "#{}\t{}\t{} .. {}\tby {}\tholding {}\t{}{}{}",
                s["id"],
                text(&s["state"]),
                text(&s["starts_at"]),
                text(&s["expired_at"]).if_empty(text(&s["ends_at"])),
                text(&s["author"]),
                s["holding"],
                text(&s["matches"]),
                through,
                match text(&s["comment"]) {
                    c if c.is_empty() => String::new(),
                    c => format!("\t# {c}"),
                },
            ),
        );
    }
    Ok(out)
}

/// `silence expire`.
async fn expire_silence(api: &Api, id: &str) -> anyhow::Result<String> {
    let id = id.trim().trim_start_matches('#');
    let id: SilenceId = id
        .parse()
        .with_context(|| format!("`{id}` is not a silence id"))?;
    let answer = send(api.request(reqwest::Method::DELETE, &format!("/api/silences/{id}"))).await?;
    let notified: Vec<String> = answer["notified_incidents"]
        .as_array()
        .map(|a| a.iter().map(|v| format!("#{v}")).collect())
        .unwrap_or_default();
    let mut out = String::new();
    match text(&answer["result"]).as_str() {
        "expired" => line(
            &mut out,
            format_args!(
                "silence #{id} expired; notified now: {}",
                if notified.is_empty() {
                    "none".to_string()
                } else {
                    notified.join(", ")
                }
            ),
        ),
        _ => line(&mut out, format_args!("silence #{id} had already ended")),
    }
    Ok(out)
}

/// The JSON answer of a 2xx; otherwise an error with the status and the service's detail.
async fn send(req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
    let resp = req
        .send()
        .await
        .context("reaching the service (is it running? --url)")?;
    let status = resp.status();
    let body = resp.text().await.context("reading the answer")?;
    let value: Value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    if !status.is_success() {
        let detail = value["detail"]
            .as_str()
            .map_or_else(|| value.to_string(), str::to_string);
        let code = value["code"].as_str().unwrap_or("error");
        bail!("{status} {code}: {detail}");
    }
    Ok(value)
}

/// A JSON string as text (not quoted); other values as JSON; null as empty.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

trait IfEmpty {
    fn if_empty(self, other: String) -> String;
}

impl IfEmpty for String {
    fn if_empty(self, other: String) -> String {
        if self.is_empty() { other } else { self }
    }
}
