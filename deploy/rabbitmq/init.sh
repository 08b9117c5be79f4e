#!/bin/sh
# RabbitMQ for the compose demo: the server, plus one user each for the watcher
# and the writer with only the permissions that each needs (permissions.env).
# Passwords come from the environment; nothing is committed.
set -eu
. /etc/rabbitmq/elkservice/permissions.env

docker-entrypoint.sh rabbitmq-server &
server=$!
trap 'kill -TERM "$server"; wait "$server"' TERM INT

rabbitmqctl await_startup --timeout 120
user() { # name password configure write read
  rabbitmqctl add_user "$1" "$2" 2>/dev/null || rabbitmqctl change_password "$1" "$2"
  rabbitmqctl set_permissions -p / "$1" "$3" "$4" "$5"
}
user elkservice-watcher "$ELK_WATCHER_AMQP_PASSWORD" "$WATCHER_CONFIGURE" "$WATCHER_WRITE" "$WATCHER_READ"
user elkservice-writer "$ELK_WRITER_AMQP_PASSWORD" "$WRITER_CONFIGURE" "$WRITER_WRITE" "$WRITER_READ"
touch /tmp/elkservice-users-ready
wait "$server"
