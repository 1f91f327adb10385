# syntax=docker/dockerfile:1

# Build a static binary.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/hogsend ./cmd/hogsend

# Run it as a non-root user on a minimal base (no shell, CA certificates included).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/hogsend /usr/local/bin/hogsend
USER nonroot:nonroot
# `hogsend dev` keeps its embedded NATS store in ./.hogsend; `serve` writes nothing locally.
WORKDIR /home/nonroot
ENV PORT=3002
EXPOSE 3002
ENTRYPOINT ["hogsend"]
CMD ["serve"]
