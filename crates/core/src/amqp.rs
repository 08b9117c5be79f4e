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
    /// The dead-letter queue keeps at most this many messages (the oldest go
    /// first), so that a flood of bad events cannot fill the broker's disk.
    pub dead_max_length: u32,
    /// And each for at most this long.
    pub dead_ttl_secs: u32,
    /// The kind of both queues. A queue keeps the kind it was declared with;
    /// see the README for moving an existing one.
    pub queue_type: QueueType,
}

/// `amqp.queue_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum QueueType {
    /// One node holds the queue: the broker's default kind.
    Classic,
    /// Replicated over the cluster's nodes with Raft: a queue that survives
    /// the loss of a minority of them.
    Quorum,
}

impl TryFrom<String> for QueueType {
    type Error = String;

    fn try_from(word: String) -> Result<Self, String> {
        crate::config::one_of(
            &[
                ("classic", QueueType::Classic),
                ("quorum", QueueType::Quorum),
            ],
            &word,
        )
    }
}

impl QueueType {
    /// The queue arguments that declare this kind.
    fn arguments(self) -> FieldTable {
        let mut args = FieldTable::default();
        if self == QueueType::Quorum {
            args.insert(
                "x-queue-type".into(),
                AMQPValue::LongString("quorum".into()),
            );
        }
        args
    }
}

impl AmqpSettings {
    pub const DEFAULTS: &'static str = r#"
[amqp]
url = "amqp://guest:guest@127.0.0.1:5672/%2f"
exchange = "elkservice.status"
queue = "elkservice.writer"
dead_exchange = "elkservice.dead"
dead_queue = "elkservice.dead"
dead_max_length = 100000
dead_ttl_secs = 1209600
queue_type = "classic"
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
pub async fn declare_topology(conn: &Connection, s: &AmqpSettings) -> lapin::Result<()> {
    let channel = &conn.create_channel().await?;
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
    declare_dead_queue(conn, s).await?;
    channel
        .queue_bind(
            s.dead_queue.as_str().into(),
            s.dead_exchange.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut args = s.queue_type.arguments();
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(s.dead_exchange.as_str().into()),
    );
    let declared = channel
        .queue_declare(s.queue.as_str().into(), durable, args)
        .await;
    if declared.as_ref().is_err_and(is_precondition_failed) {
        tracing::error!(
            queue = %s.queue,
            queue_type = ?s.queue_type,
            "the queue exists with other arguments (of another kind, say) and the broker \
             refuses to declare it otherwise: give the new kind a new queue name (amqp.queue), \
             or drain the queue, delete it and start again"
        );
    }
    declared?;
    channel
        .queue_bind(
            s.queue.as_str().into(),
            s.exchange.as_str().into(),
            "status.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let _ = channel.close(200, "topology declared".into()).await;
    Ok(())
}

/// The dead-letter queue, bounded in length and age. A queue declared by an
/// older version without the bounds cannot be redeclared with them (the broker
/// refuses other arguments and closes the channel): it is then used as it is,
/// with a warning that says how to bound it.
async fn declare_dead_queue(conn: &Connection, s: &AmqpSettings) -> lapin::Result<()> {
    let mut args = s.queue_type.arguments();
    args.insert(
        "x-max-length".into(),
        AMQPValue::LongLongInt(s.dead_max_length.into()),
    );
    args.insert(
        "x-message-ttl".into(),
        AMQPValue::LongLongInt(i64::from(s.dead_ttl_secs) * 1000),
    );
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    // On a channel of its own, which the broker closes if it refuses.
    let own = conn.create_channel().await?;
    match own
        .queue_declare(s.dead_queue.as_str().into(), durable, args)
        .await
    {
        Ok(_) => {
            let _ = own.close(200, "declared".into()).await;
            Ok(())
        }
        Err(e) if is_precondition_failed(&e) => {
            tracing::warn!(
                queue = %s.dead_queue,
                "the dead-letter queue exists with other arguments (without a length and age \
                 limit, or of another kind); it is used as it is: set a policy (max-length, \
                 message-ttl) or delete it empty to have them"
            );
            Ok(())
        }
        Err(e) => Err(e),
    }
}

fn is_precondition_failed(e: &lapin::Error) -> bool {
    e.to_string().contains("PRECONDITION_FAILED")
}
