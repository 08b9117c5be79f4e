//! HTTPS: `api.tls_cert` and `api.tls_key`, with a certificate authority
//! made by the test.

use crate::helpers::test_settings;
use elkservice_api::startup::Application;
use elkservice_testkit::{TestDatabase, TestPki};

/// The api with the test's certificate; its port.
async fn https_app(db: &TestDatabase, pki: &TestPki) -> u16 {
    let mut settings = test_settings(db.url.clone());
    settings.api.tls_cert = Some(pki.cert_file.clone());
    settings.api.tls_key = Some(pki.key_file.clone());
    let app = Application::build(settings).await.unwrap();
    let port = app.port();
    tokio::spawn(app.run_until_stopped());
    port
}

#[tokio::test]
async fn with_a_certificate_the_api_speaks_https_only() {
    let db = TestDatabase::new();
    let pki = TestPki::new();
    let port = https_app(&db, &pki).await;

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

/// HTTP/2 is not offered (docs/security.md: the `h2` crate's advisories stay
/// out of reach). A client that starts with the HTTP/2 preface over plain
/// TCP gets an HTTP/1.1 answer or a closed connection, never a SETTINGS frame.
#[tokio::test]
async fn http2_with_prior_knowledge_is_answered_in_http1_or_not_at_all() {
    let app = crate::helpers::spawn_app().await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let answer = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut tcp = std::net::TcpStream::connect(address).unwrap();
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        // The client preface, then an empty SETTINGS frame.
        tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
            .unwrap();
        let mut answer = Vec::new();
        // A reset after the answer is as good as a close.
        let _ = tcp.read_to_end(&mut answer);
        answer
    })
    .await
    .unwrap();
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 "),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
}

/// Over TLS the api offers `http/1.1` alone: a client that would take either
/// gets HTTP/1.1, and one that wants `h2` alone is refused in the handshake.
#[tokio::test]
async fn over_tls_alpn_h2_is_never_chosen() {
    let db = TestDatabase::new();
    let pki = TestPki::new();
    let port = https_app(&db, &pki).await;

    let ca = pki.ca_file.clone();
    let talk = move |alpn: &[&[u8]]| {
        use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
        use std::io::{Read, Write};
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(&ca).unwrap())
            .unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let name = ServerName::try_from("localhost").unwrap();
        let mut tls = rustls::ClientConnection::new(config.into(), name).unwrap();
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        while tls.is_handshaking() {
            tls.complete_io(&mut tcp).map_err(|e| e.to_string())?;
        }
        let chosen = tls.alpn_protocol().map(<[u8]>::to_vec);
        let mut stream = rustls::Stream::new(&mut tls, &mut tcp);
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        Ok::<_, String>((chosen, answer))
    };
    let either = talk.clone();
    let (chosen, answer) = tokio::task::spawn_blocking(move || either(&[b"h2", b"http/1.1"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(chosen.as_deref(), Some(&b"http/1.1"[..]));
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    let h2_only = tokio::task::spawn_blocking(move || talk(&[b"h2"]))
        .await
        .unwrap();
    let err = h2_only.expect_err("a client that wants h2 alone was served");
    assert!(err.contains("NoApplicationProtocol"), "{err}");
}
