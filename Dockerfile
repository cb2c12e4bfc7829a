# cmdunit in a container: `docker run cmdunit 800`.
#
# Two stages: cargo builds a release binary in the Rust image, and only that binary goes into a
# Debian slim image, run as a non-root user. Both stages are Debian bookworm, so the binary links
# against the same glibc it was built with. Plain Dockerfile syntax (no BuildKit-only features), so
# the classic builder and BuildKit both build it.
#
#   docker build -t cmdunit .
#   docker run --rm --network host cmdunit 800                       # forwarding unit on the host
#   docker run --rm -p 5000:5000 cmdunit serve --bind 0.0.0.0        # the emulator
#
# scripts/docker-check.sh builds this file unchanged and runs it end to end in CI; it makes local
# stand-ins for the two base images below under these exact names, so keep them in step with it.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# Strip symbols: the runtime image carries only what runs.
ENV CARGO_PROFILE_RELEASE_STRIP=symbols
RUN cargo build --release --locked --bin cmdunit \
 && install -D -m 0755 target/release/cmdunit /out/cmdunit

FROM debian:bookworm-slim
# A fixed non-root uid/gid, so a host folder can be handed to it (`chown 10001` or `--user`).
RUN groupadd --gid 10001 cmdunit \
 && useradd --uid 10001 --gid 10001 --home-dir /data --no-create-home --shell /usr/sbin/nologin cmdunit \
 && mkdir -p /data/results \
 && chown -R cmdunit:cmdunit /data
COPY --from=build /out/cmdunit /usr/local/bin/cmdunit
USER cmdunit
# Runs write to results/runs/<run>/ under the working directory: mount a volume there to keep them.
WORKDIR /data
VOLUME ["/data/results"]
# `cmdunit serve --bind 0.0.0.0` listens here (the forwarding unit's port; workers follow it).
EXPOSE 5000
# Ctrl-C semantics on `docker stop`: stop dispatching, drain, write what finished.
STOPSIGNAL SIGINT
ENTRYPOINT ["cmdunit"]
CMD ["--help"]
