use super::*;

#[test]
fn builds_without_a_process_default_provider() {
    // reqwest's `rustls-no-provider` panics at build time unless the config is preconfigured;
    // an unrecognised config type (another rustls version) is a build error instead.
    let client = client();
    assert!(client.is_ok(), "{client:?}");
}

#[test]
fn trusts_the_compiled_in_mozilla_roots_over_http1() {
    let config = tls_config();
    assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    assert!(webpki_roots::TLS_SERVER_ROOTS.len() > 100);
}
