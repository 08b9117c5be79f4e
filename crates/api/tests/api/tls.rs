//! HTTPS: `api.tls_cert` and `api.tls_key`, with a certificate authority
//! made by the test.

use crate::helpers::test_settings;
use elkservice_api::startup::Application;
use elkservice_testkit::{TestDatabase, TestPki};

#[tokio::test]
async fn with_a_certificate_the_api_speaks_https_only() {
    let db = TestDatabase::new();
    let pki = TestPki::new();
    let mut settings = test_settings(db.url.clone());
    settings.api.tls_cert = Some(pki.cert_file.clone());
    settings.api.tls_key = Some(pki.key_file.clone());
    let app = Application::build(settings).await.unwrap();
    let port = app.port();
    tokio::spawn(app.run_until_stopped());

    // A client that trusts the authority, by name and by address.
    for host in ["localhost", "127.0.0.1"] {
        let res = pki
            .client()
            .get(format!("https://{host}:{port}/elkservice"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{host}: {e:?}"));
        assert_eq!(res.status(), 200);
        assert_eq!(res.text().await.unwrap(), "[]");
    }
    // One that does not trust it is refused; plain HTTP gets no answer.
    let untrusted = reqwest::Client::new()
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await;
    assert!(untrusted.is_err(), "{untrusted:?}");
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
}

#[tokio::test]
async fn a_key_that_is_not_a_key_stops_the_api_with_the_file_named() {
    let db = TestDatabase::new();
    let pki = TestPki::new();
    let mut settings = test_settings(db.url.clone());
    settings.api.tls_cert = Some(pki.cert_file.clone());
    // The certificate where the key should be.
    settings.api.tls_key = Some(pki.cert_file.clone());
    let err = Application::build(settings).await.err().expect("refused");
    let text = format!("{err:#}");
    assert!(
        text.contains("api.tls_key") && text.contains("server.pem"),
        "{text}"
    );
}
