#!/usr/bin/env bash
# Reruns ../shared/bench-peers (netrace against stateright 0.31 and loom 0.7 on
# libnetwork's Handle.set protocol) on this repository's committed HEAD.
#
#   tools/bench-peers/run.sh                 # the whole comparison (30-40 min on 2 idle cores)
#   QUICK=1 tools/bench-peers/run.sh         # smoke run (N = 2, 3, one repetition)
#   REPS=3 LIMITS=0 tools/bench-peers/run.sh # fewer repetitions, no scaling limits
#
# Why a wrapper: bench-peers lives in a read-only folder, and two of its files
# (stateright-ipam/src/adapter.rs, netrace-harness/src/lib.rs) match on
# `System::Ipam`, the scenario enum netrace had before every kind went behind
# `dyn System` (model/scenario/kind.rs). This script copies the folder, applies
# api.patch (the same lookup through `System::downcast::<IpamScenario>`, nothing
# else), clones HEAD next to it as the `../netrace` its projects depend on, and
# runs its run-all.sh with every knob passed through (REPS, LIMITS, QUICK,
# LOOM_CAP_SECS, LIMIT_MEM_GB, ...). If bench-peers already uses `downcast`, the
# patch is skipped.
#
# Environment (besides run-all.sh's own):
#   BENCH_PEERS       the bench-peers folder (default: ../shared/bench-peers next to this repo)
#   BENCH_PEERS_WORK  the working copy (default: target/bench-peers; its target/ is
#                     kept between runs, the sources and the netrace clone are fresh)
# The tables land in $BENCH_PEERS_WORK/results/ (tables.md, raw.jsonl) unless OUT says.
set -euo pipefail
ROOT="$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)"
PEERS="${BENCH_PEERS:-$ROOT/../shared/bench-peers}"
WORK="${BENCH_PEERS_WORK:-$ROOT/target/bench-peers}"
if [ ! -f "$PEERS/run-all.sh" ]; then
  echo "error: no bench-peers at $PEERS (its run-all.sh is missing); set BENCH_PEERS to the folder" >&2
  exit 2
fi
mkdir -p "$WORK"
# Fresh sources, kept build folder.
find "$WORK" -mindepth 1 -maxdepth 1 ! -name target ! -name results -exec rm -rf {} +
cp -r "$PEERS"/. "$WORK"/
chmod -R u+w "$WORK"
if grep -q 'System::Ipam' "$WORK/stateright-ipam/src/adapter.rs" "$WORK/netrace-harness/src/lib.rs"; then
  patch -s -d "$WORK" -p1 < "$ROOT/tools/bench-peers/api.patch"
else
  echo "bench-peers already matches netrace's scenario API: api.patch not applied" >&2
fi
git clone -q "$ROOT" "$WORK/netrace"
echo "bench-peers from $PEERS, netrace at $(git -C "$WORK/netrace" log --oneline -1)" >&2
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$WORK/target}"
exec "$WORK/run-all.sh"
