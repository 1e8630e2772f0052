# syntax=docker/dockerfile:1
# Multi-stage build: one builder, two small runtime images (targets
# `refund-ledger` and `apo-sim`), both running as a non-root user.

FROM rust:1.85-bookworm AS build
# Extra features of the ledger, e.g. `kurrentdb` for the KurrentDB backend (docker-compose.yml's profile).
ARG LEDGER_FEATURES=""
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p refund-ledger -p apo-sim ${LEDGER_FEATURES:+--features refund-ledger/$LEDGER_FEATURES} \
 && mkdir -p /out \
 && cp target/release/refund-ledger target/release/apo-sim /out/

FROM debian:bookworm-slim AS runtime
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/refund-ledger --create-home ledger
WORKDIR /var/lib/refund-ledger
# Both images carry refund-ledger for its `healthcheck` command (no curl needed).
COPY --from=build /out/refund-ledger /usr/local/bin/refund-ledger
USER 10001:10001

FROM runtime AS apo-sim
COPY --from=build /out/apo-sim /usr/local/bin/apo-sim
ENV APO_SIM_LISTEN=0.0.0.0:8090
EXPOSE 8090
HEALTHCHECK --interval=10s --timeout=3s CMD ["refund-ledger", "healthcheck", "--url", "http://127.0.0.1:8090/sim/faults"]
ENTRYPOINT ["apo-sim"]

FROM runtime AS refund-ledger
ENV REFUND_LEDGER_LISTEN=0.0.0.0:8080 \
    REFUND_LEDGER_STORE=sqlite:///var/lib/refund-ledger/ledger.db
VOLUME ["/var/lib/refund-ledger"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD ["refund-ledger", "healthcheck"]
ENTRYPOINT ["refund-ledger"]
CMD ["serve"]
