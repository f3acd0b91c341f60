# pollhook as a static binary on a distroless base, running as non-root.
#   docker build -t pollhook .
#   docker run -v $PWD/pollhook.yaml:/etc/pollhook/pollhook.yaml -v pollhook-data:/data -p 8080:8080 pollhook
# Set state.path: /data/pollhook.db and http.listen: 0.0.0.0:8080 in the config.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The exact build that cmd/pollhook's TestStaticBinary runs and checks.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/pollhook ./cmd/pollhook
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/pollhook /usr/local/bin/pollhook
COPY --from=build --chown=65532:65532 /out/data /data
VOLUME /data
EXPOSE 8080
USER 65532:65532
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s CMD ["pollhook", "healthcheck", "-c", "/etc/pollhook/pollhook.yaml"]
ENTRYPOINT ["pollhook"]
CMD ["run", "-c", "/etc/pollhook/pollhook.yaml"]
