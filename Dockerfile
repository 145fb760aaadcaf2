# A small image of the gateway: built in rust:1.95, run on debian:bookworm-slim (the
# binary, the migrations and templates are compiled in; the demo config and runbooks are
# copied for `docker compose up`). Build: docker build -t portcullis .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin portcullis && strip target/release/portcullis

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /var/lib/portcullis --create-home portcullis
COPY --from=build /src/target/release/portcullis /usr/local/bin/portcullis
COPY config/portcullis.toml /etc/portcullis/portcullis.toml
COPY runbooks /etc/portcullis/runbooks
USER portcullis
WORKDIR /var/lib/portcullis
ENV PORTCULLIS__RUNBOOKS__DIR=/etc/portcullis/runbooks
EXPOSE 15432 13306 8009
ENTRYPOINT ["portcullis"]
CMD ["serve", "--config", "/etc/portcullis/portcullis.toml"]
