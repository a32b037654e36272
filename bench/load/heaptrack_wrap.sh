#!/usr/bin/env bash
# bench/load/heaptrack_wrap.sh - run hotline under heaptrack inside a load
# harness that wants ONE binary and reads that binary's PID
# (BENCHMARKS.md "Memory per call"). The process stays this PID (exec) and
# keeps its RSS; heaptrack's interpreter reads the fifo in the background.
#
#   HT_BIN=target/release/hotline HT_OUT=/abs/heap.gz \
#   RMEM_DEFAULT=4194304 RECORDING_FORMAT=alaw SYSTEMS=hotline \
#   HOTLINE_BIN=$PWD/bench/load/heaptrack_wrap.sh OUT=/abs/run.md bench/load/peer_twin.sh 400
#   bench/load/heap_by_site.py /abs/heap.gz timeline          # heap and RSS per second
#   CALLS=400 bench/load/heap_by_site.py /abs/heap.gz diff 3000 26000   # growth by site
#
# Needs heaptrack (apt-get install heaptrack).
set -euo pipefail
BIN=${HT_BIN:?HT_BIN: the hotline binary}
OUT=${HT_OUT:?HT_OUT: where the heaptrack data goes (.gz)}
LIB=${HT_LIB:-/usr/lib/heaptrack}
pipe=$(mktemp -u /tmp/heaptrack-fifo.XXXXXX)
mkfifo "$pipe"
{ "$LIB/libexec/heaptrack_interpret" < "$pipe" | gzip -1 > "$OUT"; rm -f "$pipe"; } &
export LD_PRELOAD="$LIB/libheaptrack_preload.so${LD_PRELOAD:+:$LD_PRELOAD}"
export DUMP_HEAPTRACK_OUTPUT=$pipe
exec "$BIN" "$@"
