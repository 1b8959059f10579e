#!/usr/bin/env bash
# Installs the third-party peers the interop and conformance tests run, into a cache folder
# outside the repository, and prints nothing but errors. Idempotent: what is present is kept.
#
#   go-ethereum's `geth` and `devp2p` -> $CACHE/geth-$GETH_VERSION/bin
#   the ethereumjs peer (npm packages) -> $CACHE/ejs
#   Debian's chromium (`chromium` piece only; needs root and apt) -> /usr/bin/chromium, for the
#   observatory page test
#
# CACHE is ${XDG_CACHE_HOME:-$HOME/.cache}/ethp2p. A missing toolchain is an error naming it.
# The pinned go-ethereum version lives here and nowhere else; tests read it from this script.
set -euo pipefail
GETH_VERSION=v1.17.10

here="$(cd "$(dirname "$0")" && pwd)"
shared="${ETHP2P_SHARED:-$here/../../shared}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/ethp2p"
mkdir -p "$cache"

what="${1:-all}"

install_geth() {
  local dir="$cache/geth-$GETH_VERSION"
  if [ -x "$dir/bin/geth" ] && [ -x "$dir/bin/devp2p" ]; then
    return 0
  fi
  command -v go >/dev/null || { echo "install-peers: go (Go 1.26) is required to build go-ethereum $GETH_VERSION" >&2; exit 1; }
  command -v gcc >/dev/null || { echo "install-peers: gcc is required to build go-ethereum (cgo)" >&2; exit 1; }
  mkdir -p "$dir"
  # A lock, so two test binaries that start at once build it once.
  exec 9>"$dir/.lock"
  flock 9
  if [ -x "$dir/bin/geth" ] && [ -x "$dir/bin/devp2p" ]; then
    return 0
  fi
  echo "install-peers: building go-ethereum $GETH_VERSION (geth, devp2p) into $dir/bin (a few minutes, once)" >&2
  GOBIN="$dir/bin.tmp" GOFLAGS=-mod=mod go install \
    "github.com/ethereum/go-ethereum/cmd/devp2p@$GETH_VERSION" \
    "github.com/ethereum/go-ethereum/cmd/geth@$GETH_VERSION" >&2
  rm -rf "$dir/bin"
  mv "$dir/bin.tmp" "$dir/bin"
  # The ethtest chain ships inside the module; a stable path to it (module cache files are read-only).
  local testdata
  testdata="$(go env GOMODCACHE)/github.com/ethereum/go-ethereum@$GETH_VERSION/cmd/devp2p/internal/ethtest/testdata"
  [ -f "$testdata/chain.rlp" ] || { echo "install-peers: ethtest chain not found at $testdata" >&2; exit 1; }
  ln -sfn "$testdata" "$dir/ethtest"
}

install_ejs() {
  command -v node >/dev/null || { echo "install-peers: node (Node.js 20) is required for the ethereumjs interop peer" >&2; exit 1; }
  command -v npm >/dev/null || { echo "install-peers: npm is required for the ethereumjs interop peer" >&2; exit 1; }
  local src="$shared/interop/ejs"
  [ -f "$src/peer.mjs" ] || { echo "install-peers: $src/peer.mjs not found (../shared beside the repository)" >&2; exit 1; }
  local dir="$cache/ejs"
  mkdir -p "$dir"
  exec 8>"$dir/.lock"
  flock 8
  cp "$src/package.json" "$src/package-lock.json" "$src/peer.mjs" "$dir/"
  if [ ! -d "$dir/node_modules" ] || ! cmp -s "$src/package-lock.json" "$dir/node_modules/.ethp2p-lock"; then
    (cd "$dir" && npm ci --no-audit --no-fund --silent >&2)
    cp "$src/package-lock.json" "$dir/node_modules/.ethp2p-lock"
  fi
}

install_chromium() {
  command -v chromium >/dev/null && return 0
  command -v apt-get >/dev/null || { echo "install-peers: chromium is missing and there is no apt-get to install Debian's chromium package" >&2; exit 1; }
  [ "$(id -u)" = 0 ] || { echo "install-peers: chromium is missing; installing it (apt-get install chromium) needs root" >&2; exit 1; }
  exec 7>"$cache/.chromium.lock"
  flock 7
  command -v chromium >/dev/null && return 0
  echo "install-peers: installing Debian's chromium (once)" >&2
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2; then
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2
  fi
  command -v chromium >/dev/null || { echo "install-peers: apt-get ran but chromium is still not on PATH" >&2; exit 1; }
}

case "$what" in
  all) install_ejs; install_geth ;;
  geth) install_geth ;;
  ejs) install_ejs ;;
  chromium) install_chromium ;;
  version) echo "$GETH_VERSION" ;;
  path-geth) echo "$cache/geth-$GETH_VERSION" ;;
  path-ejs) echo "$cache/ejs" ;;
  *) echo "usage: install-peers.sh [all|geth|ejs|chromium|version|path-geth|path-ejs]" >&2; exit 2 ;;
esac
