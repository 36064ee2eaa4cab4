# The voice-operator image: the release binary on distroless (glibc, CA
# certificates, no shell), running as the "nonroot" user 65532.
#
#   docker build -t voice-operator:0.1.0 .
#   docker run --rm voice-operator:0.1.0 --help
#
# The chart (charts/voice-operator) runs it with `run` and the settings in
# the environment; the root file system can stay read-only.

FROM rust:1.95-bookworm AS build
WORKDIR /src
# What cargo needs to build the binary: the manifest and lock file, the
# sources, and the bench sources (Cargo.toml declares [[bench]] targets,
# and cargo refuses a manifest whose target files are missing).
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked \
    && install -D -m 0755 target/release/voice-operator /out/voice-operator

# cc-debian12: glibc and libgcc_s, which the binary links against (libc,
# libm, libgcc_s, ld-linux; TLS is rustls, so no OpenSSL).
FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="voice-operator" \
      org.opencontainers.image.description="Kubernetes operator for ElevenLabs voice agents, with a Bedrock webhook bridge and a lossless Kinesis action log" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/voice-operator /usr/local/bin/voice-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/voice-operator"]
CMD ["run"]
