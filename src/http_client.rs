//! The outbound HTTP client's TLS set-up, shared by the channels and the tests.
//!
//! reqwest 0.13 verifies with the platform's CA store and aws-lc by default. The service keeps
//! what it had with 0.12: rustls with the `ring` provider (the one lettre uses for SMTP) and the
//! Mozilla roots compiled in, so a slim image without a CA bundle still reaches Slack and
//! PagerDuty, and nothing depends on a process-wide default crypto provider.

use std::sync::Arc;

/// A `reqwest` builder with the service's TLS configuration; callers add timeouts and policy.
///
/// Every client in the crate (and in the tests) must start here: with reqwest's
/// `rustls-no-provider` feature, `reqwest::Client::new()` panics for lack of a provider.
pub fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().tls_backend_preconfigured(tls_config())
}

/// A client with the service's TLS configuration and reqwest's other defaults.
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    builder().build()
}

fn tls_config() -> rustls::ClientConfig {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        // ring supports the safe defaults (TLS 1.2 and 1.3), so this is not reached; rustls's
        // own default is ring too, as it is the only provider compiled in.
        .unwrap_or_else(|_| rustls::ClientConfig::builder());
    let mut config = config.with_root_certificates(roots).with_no_client_auth();
    // Only HTTP/1.1 is compiled into reqwest (no `http2` feature).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

#[cfg(test)]
mod tests;
