# syntax=docker/dockerfile:1
#
# airlock server image: a static, CGO-free binary on distroless, running as
# UID 65532 with nothing else in the image (no shell, no package manager).
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t airlock:dev .
#   docker run --read-only --tmpfs /tmp -v airlock-data:/var/lib/airlock -p 8640:8640 airlock:dev
#
# Base images are pinned by tag. For reproducible builds pin them by digest
# too (golang:1.26@sha256:..., static-debian12:nonroot@sha256:...); the
# digests are not recorded here because this file was written offline.
# go.mod says go 1.26.8: a golang:1.26 image older than that stops the build
# (the image sets GOTOOLCHAIN=local) instead of fetching another toolchain.

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath \
      -ldflags "-s -w -X github.com/airlock-dev/airlock/internal/server.Version=${VERSION}" \
      -o /out/airlock ./cmd/airlock \
 && mkdir -p /out/data

# distroless/static rather than scratch: it ships CA certificates (airlock
# calls webhooks, change systems and TLS PostgreSQL), tzdata (time windows),
# /etc/passwd with the nonroot user (65532) and a /tmp, all of which scratch
# would need added by hand.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/airlock /airlock
# The data directory exists and belongs to the runtime user, so a volume
# mounted there (or a named Docker volume initialised from it) is writable
# while the root filesystem stays read-only.
COPY --from=build --chown=65532:65532 /out/data /var/lib/airlock
USER 65532:65532
EXPOSE 8640
ENTRYPOINT ["/airlock"]
CMD ["server", "--data", "/var/lib/airlock", "--listen", "0.0.0.0:8640"]
