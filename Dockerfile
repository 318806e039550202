# Barbara: the `barbara` server in a small Debian image.
#   docker build -t barbara .
#   docker run -p 8080:8080 -e OPENAI_API_KEY=… -e PUBLIC_URL=https://bridge.example.com barbara
# SIGTERM drains calls for BARBARA_SHUTDOWN_GRACE_SECS (default 30), so give `docker stop` a
# longer timeout (`-t 45`). Mount a TOML file and set BARBARA_CONFIG to configure the prompt and
# tools (see examples/barbara.toml); `docker kill -s HUP` reloads it.

FROM rust:1-bookworm AS build
# cmake builds the bundled libopus.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only the workspace's sources, never a local target/ directory.
COPY Cargo.toml Cargo.lock ./
COPY core core
COPY runtime-tokio runtime-tokio
COPY runtime-async-std runtime-async-std
COPY tests tests
COPY bench bench
COPY test-origin test-origin
COPY examples examples
RUN cargo build --release --locked -p barbara-tokio --bin barbara \
 && cp target/release/barbara /usr/local/bin/barbara

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/barbara barbara
COPY --from=build /usr/local/bin/barbara /usr/local/bin/barbara
COPY examples/barbara.toml /etc/barbara/barbara.toml
USER barbara
WORKDIR /var/lib/barbara
ENV PORT=8080 \
    BARBARA_RECORDS_DIR=/var/lib/barbara/calls
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/barbara"]
CMD ["serve"]
