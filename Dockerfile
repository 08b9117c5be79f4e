# One image with the four programs: elkservice-api (the default command),
# elkservice-writer, elkservice-watcher and elkservice-notifier.
#
#   docker build -t elkservice .
#   scripts/image      (the same with Podman and no registry: localhost/elkservice:latest)
#   docker run --rm -p 8080:8080 -e DATABASE_URL=mysql://… -e ELK_API__KEYS=<digest> elkservice

FROM rust:1.95-slim-bookworm AS build
# Lets scripts/image remove this stage's image once the build is done.
LABEL org.elkservice.stage=build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates crates
COPY tests tests
COPY migrations migrations
RUN cargo build --release --locked --bin elkservice-api --bin elkservice-writer --bin elkservice-watcher \
      --bin elkservice-notifier

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin elk
COPY --from=build /src/target/release/elkservice-api \
                  /src/target/release/elkservice-writer \
                  /src/target/release/elkservice-watcher \
                  /src/target/release/elkservice-notifier /usr/local/bin/
# In a container, listen on every interface (the programs default to loopback).
ENV ELK_API__LISTEN=0.0.0.0:8080 \
    ELK_WRITER__LISTEN=0.0.0.0:9187 \
    ELK_WATCHER__LISTEN=0.0.0.0:9188 \
    ELK_NOTIFIER__LISTEN=0.0.0.0:9189
USER 10001
EXPOSE 8080 9187 9188 9189
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
CMD ["elkservice-api"]
