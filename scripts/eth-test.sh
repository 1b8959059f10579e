#!/usr/bin/env bash
# Runs go-ethereum's `devp2p rlpx eth-test` against examples/node serving the suite's own chain,
# everything on loopback, and prints the suite's output (`-- RUN`, `-- OK`/`-- FAIL`, `N/M tests
# passed.`). Extra arguments go to devp2p (e.g. `--run 'Status|GetReceipts'`).
#
#   1. geth init + import of the ethtest chain into a temporary datadir;
#   2. geth on 127.0.0.1, port 0, no discovery, --netrestrict 127.0.0.0/8 (it has the receipts);
#   3. examples/node --network genesis.json --import chain.rlp, with geth as its static peer:
#      it fetches the receipts from geth and prints `receipts imported: …` when done;
#   4. devp2p rlpx eth-test against our node. The engine API URL and JWT secret are required
#      flags; nothing listens there, so the transaction tests fail (they need an execution
#      client).
#
# NODE_BIN: the node example binary (default: target/debug/examples/node, built if missing).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$here/.."
"$here/install-peers.sh" geth
geth_dir="$("$here/install-peers.sh" path-geth)"
geth="$geth_dir/bin/geth"
devp2p="$geth_dir/bin/devp2p"
chain="$geth_dir/ethtest"
node_bin="${NODE_BIN:-$repo/target/debug/examples/node}"
[ -x "$node_bin" ] || (cd "$repo" && cargo build --quiet --example node)

work="$(mktemp -d)"
geth_pid=""
node_pid=""
cleanup() {
  [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null || true
  [ -n "$geth_pid" ] && kill "$geth_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$geth" --datadir "$work/geth" init "$chain/genesis.json" >"$work/geth-init.log" 2>&1
"$geth" --datadir "$work/geth" import "$chain/chain.rlp" >"$work/geth-import.log" 2>&1
"$geth" --datadir "$work/geth" --port 0 --nat none --netrestrict 127.0.0.0/8 --nodiscover \
  --authrpc.addr 127.0.0.1 --authrpc.port 0 --syncmode full >"$work/geth.log" 2>&1 &
geth_pid=$!
geth_enode=""
for _ in $(seq 100); do
  geth_enode="$("$geth" attach --exec admin.nodeInfo.enode "$work/geth/geth.ipc" 2>/dev/null | tr -d '"' || true)"
  case "$geth_enode" in enode://*) break ;; *) geth_enode="" ;; esac
  sleep 0.2
done
[ -n "$geth_enode" ] || { echo "eth-test: geth did not start (log: $work/geth.log)" >&2; cat "$work/geth.log" >&2; exit 1; }
geth_enode="${geth_enode%%\?*}"

"$node_bin" --network "$chain/genesis.json" --import "$chain/chain.rlp" --listen 127.0.0.1:0 \
  --no-discovery --netrestrict 127.0.0.0/8 --static "$geth_enode" --every 3600 \
  >"$work/node.out" 2>"$work/node.err" &
node_pid=$!
for _ in $(seq 300); do
  grep -q "^receipts imported" "$work/node.out" 2>/dev/null && break
  kill -0 "$node_pid" 2>/dev/null || { echo "eth-test: node exited" >&2; cat "$work/node.err" >&2; exit 1; }
  sleep 0.2
done
grep -q "^receipts imported" "$work/node.out" || { echo "eth-test: node did not fetch receipts" >&2; cat "$work/node.err" >&2; exit 1; }
grep "^receipts imported" "$work/node.out" >&2
node_enode="$(head -1 "$work/node.out")"

# devp2p exits non-zero when a test fails; its output is what matters.
"$devp2p" rlpx eth-test --chain "$chain" --node "$node_enode" \
  --engineapi http://127.0.0.1:1 --jwtsecret 0x7365637265747365637265747365637265747365637265747365637265747365 \
  "$@" || true
