//! RabbitMQ settings and topology: the exchange that watchers publish to, the
//! writer's queue, and the dead-letter pair. Declared idempotently by every
//! program that uses them, so any of them may start first.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use serde::Deserialize;

/// `[amqp]`: the broker and the names of the topology (defaults as in the README).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmqpSettings {
    /// `amqp://user:password@host:port/vhost`.
    pub url: String,
    /// Topic exchange that status events are published to.
    pub exchange: String,
    /// The writer's queue, bound to `status.#`.
    pub queue: String,
    /// Exchange and queue for messages the writer cannot apply.
    pub dead_exchange: String,
    pub dead_queue: String,
}

impl AmqpSettings {
    pub const DEFAULTS: &'static str = r#"
[amqp]
url = "amqp://guest:guest@127.0.0.1:5672/%2f"
exchange = "elkservice.status"
queue = "elkservice.writer"
dead_exchange = "elkservice.dead"
dead_queue = "elkservice.dead"
"#;
}

impl AmqpSettings {
    /// The default names, on the broker at `url`.
    pub fn with_url(url: &str) -> Self {
        #[derive(Deserialize)]
        struct Defaults {
            amqp: AmqpSettings,
        }
        let defaults: Defaults =
            crate::config::load_str(Self::DEFAULTS).expect("the defaults parse");
        AmqpSettings {
            url: url.to_owned(),
            ..defaults.amqp
        }
    }
}

pub async fn connect(url: &str, name: &str) -> lapin::Result<Connection> {
    // The name shows in the management UI's connection list.
    let props = ConnectionProperties::default().with_connection_name(name.into());
    Connection::connect(url, props).await
}

fn durable_exchange() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    }
}

/// Declare the exchange the watchers publish to.
pub async fn declare_exchange(channel: &Channel, s: &AmqpSettings) -> lapin::Result<()> {
    channel
        .exchange_declare(
            s.exchange.as_str().into(),
            ExchangeKind::Topic,
            durable_exchange(),
            FieldTable::default(),
        )
        .await
}

/// Declare everything: the status exchange, the writer's queue bound to
/// `status.#` and dead-lettered to `dead_exchange`, and the dead-letter queue.
pub async fn declare_topology(channel: &Channel, s: &AmqpSettings) -> lapin::Result<()> {
    declare_exchange(channel, s).await?;
    channel
        .exchange_declare(
            s.dead_exchange.as_str().into(),
            ExchangeKind::Fanout,
            durable_exchange(),
            FieldTable::default(),
        )
        .await?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .queue_declare(s.dead_queue.as_str().into(), durable, FieldTable::default())
        .await?;
    channel
        .queue_bind(
            s.dead_queue.as_str().into(),
            s.dead_exchange.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut args = FieldTable::default();
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(s.dead_exchange.as_str().into()),
    );
    channel
        .queue_declare(s.queue.as_str().into(), durable, args)
        .await?;
    channel
        .queue_bind(
            s.queue.as_str().into(),
            s.exchange.as_str().into(),
            "status.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
}
