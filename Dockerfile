# pollhook as a static binary on a distroless base, running as non-root.
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t pollhook .
#   docker run -v $PWD/pollhook.yaml:/etc/pollhook/pollhook.yaml:ro -v pollhook-data:/data \
#              --env-file pollhook.env pollhook
#
# The working directory is /data, a volume: a relative state.path (the
# examples' pollhook-data/…) lands there, as does an absolute /data/….
# Set http.listen: 0.0.0.0:8080 (and publish it with -p 8080:8080) for
# /metrics, /readyz and the REST Hooks API. The HEALTHCHECK needs no
# listener: without one it checks that the daemon keeps renewing its leases
# in the state file (pollhook help healthcheck).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The image has no .git, so no VCS stamp: the version comes in as an argument.
ARG VERSION=
# The exact build that cmd/pollhook's TestStaticBinary runs and checks.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/pollhook ./cmd/pollhook
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/pollhook /usr/local/bin/pollhook
COPY --from=build --chown=65532:65532 /out/data /data
WORKDIR /data
VOLUME /data
EXPOSE 8080
USER 65532:65532
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s CMD ["pollhook", "healthcheck", "-c", "/etc/pollhook/pollhook.yaml"]
ENTRYPOINT ["pollhook"]
CMD ["run", "-c", "/etc/pollhook/pollhook.yaml"]
