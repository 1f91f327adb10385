# Developer tasks for Hogsend. Install `just` with `npm install -g rust-just`.
# CI does not use this file: it runs .ci/run.

set shell := ["bash", "-euo", "pipefail", "-c"]

sqlc_version := "v1.31.1"
sqlc := "go run github.com/sqlc-dev/sqlc/cmd/sqlc@" + sqlc_version

# List the recipes.
default:
    @just --list

# Run everything in one process: embedded NATS, migrations, all services, HTTP on :3002.
dev *args:
    go run ./cmd/hogsend dev {{args}}

# Run the tests (PostgreSQL on 127.0.0.1:5432, user postgres, trust auth; or set HOGSEND_TEST_DATABASE_URL).
test *args:
    go test ./... {{args}}

# Everything CI checks: tests, vet, gofmt, sqlc staleness.
ci:
    bash .ci/run

# Regenerate sqlc/dbsqlc from sqlc/queries and schema/ (sqlc v1.31.1, needs cgo).
sqlc:
    cd sqlc && {{sqlc}} generate

# Fail when sqlc/dbsqlc differs from what sqlc would generate now.
sqlc-check:
    #!/usr/bin/env bash
    set -euo pipefail
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    cp -R sqlc schema "$tmp/"
    rm -rf "$tmp/sqlc/dbsqlc"
    (cd "$tmp/sqlc" && {{sqlc}} generate)
    if ! diff -ru sqlc/dbsqlc "$tmp/sqlc/dbsqlc"; then
        echo "sqlc/dbsqlc is stale: run 'just sqlc' and commit the result" >&2
        exit 1
    fi
    echo "sqlc/dbsqlc is up to date"

# Run the benchmarks. BENCHMARKS.md records the figures (as ratios against baselines measured in the same run).
# `hogsend bench` measures ingest, projection, latency and memory with their
# baselines in one run; the go test benchmarks cover smaller parts.
bench *args:
    go run ./cmd/hogsend bench {{args}}
    go test -run '^$' -bench . -benchmem ./...

# go vet and the gofmt check (staticcheck is a separate recipe: it downloads its module).
lint: vet fmt-check

# go vet ./...
vet:
    go vet ./...

# Fail listing the tracked Go files gofmt would change.
fmt-check:
    #!/usr/bin/env bash
    set -euo pipefail
    files=()
    while IFS= read -r -d '' f; do
        if [ -f "$f" ]; then files+=("$f"); fi
    done < <(git ls-files -z -- '*.go')
    out=$(gofmt -l "${files[@]}")
    if [ -n "$out" ]; then
        echo "not gofmt-formatted (run: gofmt -w <file>):" >&2
        echo "$out" >&2
        exit 1
    fi

# staticcheck, fetched through the Go module proxy (optional: needs network).
staticcheck:
    go run honnef.co/go/tools/cmd/staticcheck@latest ./...

# Build the binary into ./hogsend (ignored by git).
build:
    CGO_ENABLED=0 go build -o hogsend ./cmd/hogsend

# Apply database migrations to DATABASE_URL.
migrate:
    go run ./cmd/hogsend migrate
