# syntax=docker/dockerfile:1
# Build: the same `cargo build --locked` CI runs, in release mode.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY migrations ./migrations
COPY routing.yaml ./
RUN cargo build --release --locked --bin paiid-alerts

# Runtime: slim Debian, CA roots for Slack/PagerDuty/SMTP over TLS, curl for the health check.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/paiid-alerts --shell /usr/sbin/nologin paiid \
 && mkdir -p /var/lib/paiid-alerts /etc/paiid-alerts \
 && chown paiid /var/lib/paiid-alerts
COPY --from=build /src/target/release/paiid-alerts /usr/local/bin/paiid-alerts
COPY routing.yaml /etc/paiid-alerts/routing.yaml
USER paiid
# The database lives on a volume; the routing file can be replaced by mounting over it.
ENV DATABASE_URL=sqlite:///var/lib/paiid-alerts/paiid-alerts.db \
    ROUTING_CONFIG=/etc/paiid-alerts/routing.yaml \
    LISTEN_ADDR=0.0.0.0:8080
VOLUME ["/var/lib/paiid-alerts"]
EXPOSE 8080
# Ready = database reachable, migrations applied, overdue escalations fired.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
# Listening on 0.0.0.0 requires SENTRY_CLIENT_SECRET (or SENTRY_WEBHOOK_TOKEN): unsigned
# webhooks are refused on a public address unless --allow-unsigned-webhooks is passed.
# It also requires PUBLIC_URL, the address people open ack links at; serve refuses to start
# without it (links would read http://0.0.0.0:8080/...):
#   docker run -e PUBLIC_URL=https://alerts.paiid.ai -e SENTRY_CLIENT_SECRET=... paiid-alerts
# SENTRY_DSN (optional) reports this service's own errors to Sentry.
ENTRYPOINT ["paiid-alerts"]
CMD ["serve"]
