#!/usr/bin/env bash
# Build (once) and cache tools/gitops-status: what GitOps tools make of a
# VoiceAgent, computed by the libraries they run (kstatus from
# sigs.k8s.io/cli-utils, the Lua VM of Argo CD's health checks). The tests
# of tests/it/controller/gitops.rs spawn it; scripts/test.sh passes its
# path in VOICE_OPERATOR_TEST_GITOPS_STATUS.
#
#   GITOPS_STATUS=$(scripts/gitops-status.sh | tail -1)   # build if needed, print the path
#
# The modules come through the Go module proxy at the versions go.mod and
# go.sum pin; nothing prebuilt is downloaded. A cold build takes ~25 s on 2 cores
# (module downloads included). The cache is keyed by a hash of the
# module's files, so an edit of main.go, go.mod or go.sum builds anew:
#   ${VOICE_OPERATOR_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/voice-operator}/gitops-status/<hash>/gitops-status
# The last stdout line is the binary's absolute path; progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

SRC=tools/gitops-status
TOOLS=${VOICE_OPERATOR_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/voice-operator}

log() { printf '[gitops-status] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

hash=$(cd "$SRC" && cat go.mod go.sum ./*.go | sha256sum | cut -c1-16)
DIR=$TOOLS/gitops-status/$hash
BIN=$DIR/gitops-status

if [[ ! -x $BIN ]]; then
  command -v go >/dev/null || die "go not found in PATH (needed to build $SRC)"
  mkdir -p "$DIR"
  # one builder at a time (parallel test runs may call this script)
  exec 8>"$DIR/.lock"
  flock 8
  if [[ ! -x $BIN ]]; then
    t0=$SECONDS
    log "building $SRC ($(go version | cut -d' ' -f3))"
    # -mod=readonly: go.sum must already hold every module, as committed.
    ( cd "$SRC" && GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0 \
        go build -trimpath -ldflags="-s -w" -o "$BIN.tmp" . ) >&2 \
      || { rm -f "$BIN.tmp"; die "building $SRC failed"; }
    # a rename within DIR: no run ever finds a half-written binary
    mv -f "$BIN.tmp" "$BIN"
    log "built in $((SECONDS - t0))s: $BIN"
  fi
  exec 8>&-
fi
echo "$BIN"
