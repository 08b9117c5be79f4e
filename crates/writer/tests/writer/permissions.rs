//! The broker users of `deploy/rabbitmq/permissions.env`: the watcher and the
//! writer each do their job with only their own permissions, and the watcher
//! cannot consume the writer's queue.

use crate::harness::{event, Harness};
use crate::selfcheck::Pings;
use elkservice_core::amqp::{self, AmqpSettings};
use elkservice_core::Status;
use elkservice_testkit::eventually;
use elkservice_writer::settings::SelfcheckSettings;
use lapin::options::{BasicConsumeOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use std::collections::HashMap;

/// The permissions file's variables, expanded as the shell would.
fn permissions() -> HashMap<String, String> {
    let text = include_str!("../../../../deploy/rabbitmq/permissions.env");
    let mut vars: HashMap<String, String> = HashMap::new();
    for line in text.lines().map(str::trim) {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if line.starts_with('#') {
            continue;
        }
        let value = if let Some(quoted) = value.strip_prefix('\'') {
            quoted.trim_end_matches('\'').to_owned()
        } else {
            let name = value.trim_matches('"').trim_start_matches('$');
            vars[name].clone()
        };
        vars.insert(key.to_owned(), value);
    }
    vars
}

#[tokio::test]
async fn the_watcher_and_the_writer_work_as_their_own_broker_users() {
    let h = Harness::new().await;
    let p = permissions();
    let watcher = h
        .vhost
        .user(
            "watcher",
            [
                &p["WATCHER_CONFIGURE"],
                &p["WATCHER_WRITE"],
                &p["WATCHER_READ"],
            ],
        )
        .await;
    let writer = h
        .vhost
        .user(
            "writer",
            [
                &p["WRITER_CONFIGURE"],
                &p["WRITER_WRITE"],
                &p["WRITER_READ"],
            ],
        )
        .await;

    let mut settings = h.settings();
    settings.amqp = AmqpSettings::with_url(&writer.url);
    // Its selfcheck too: published to the status exchange as the writer.
    let pings = Pings::start().await;
    settings.selfcheck = SelfcheckSettings {
        ping_url: pings.url.clone(),
        interval_secs: 1,
        deadline_secs: 5,
    };
    let w = h.start_writer(settings).await;

    // The watcher declares the topology and publishes as itself.
    let conn = amqp::connect(&watcher.url, "as-watcher").await.unwrap();
    amqp::declare_topology(&conn, &AmqpSettings::with_url(&watcher.url))
        .await
        .expect("the watcher may declare the topology");
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let e = event("es", Status::Normal, 1);
    elkservice_testkit::publish_events(&ch, std::slice::from_ref(&e)).await;
    h.wait_for_newest(std::slice::from_ref(&e), 10).await;

    // But it cannot take the writer's events.
    let stolen = ch
        .basic_consume(
            "elkservice.writer".into(),
            "thief".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert!(stolen.is_err(), "the watcher consumed the writer's queue");
    eventually(20, "a selfcheck published as the writer", || async {
        (pings.count() >= 1).then_some(())
    })
    .await;
    w.stop().await;
}
