#!/usr/bin/env bash
# bench/load/edge_recorded.sh - concurrent RECORDED calls of hotline nodes
# behind the Kamailio edge (deploy/kamailio/kamailio.cfg) against one node
# alone, on the same machine, one set-up after the other (issue 15):
#
#   a  one node,             generator -> node
#   b  Kamailio + one node,  generator -> edge -> node          (not by default)
#   c  Kamailio + two nodes, generator -> edge -> both nodes (round robin)
#
# The media load is recorded.sh's: `hotline-load` registers AGENTS agent UAs
# and places N calls with real 20 ms PCMA both ways, measuring loss and
# lateness per packet; every call is recorded and WAVs are checked with sox.
# All set-ups run on one PostgreSQL store (`[store] url`, a fresh database
# per step). Behind the edge the agents register THROUGH it (their REGISTERs
# get a Path; the nodes ring them through the edge) and the caller calls the
# edge (the nodes' carrier trunk admits only the edge's address); RTP goes
# directly between the generator and the nodes (Kamailio relays SIP only).
#
# Every step starts fresh nodes, a fresh edge and a fresh database. Per step
# it reports loss, late packets, hotline CPU (sum over the nodes) per call,
# RSS per node and KiB per call over the generator's steady window (all
# calls up), Kamailio's and PostgreSQL's CPU (steady window, and per call
# over the whole step: signalling and the store's writes happen at set-up
# and hang-up), WAVs checked, and how the calls spread over the nodes. A
# set-up stops at its first step that is not clean (recorded.sh's rule).
#
#   bench/load/edge_recorded.sh
#   STEPS="100 200 400" HOLD_SECS=20 bench/load/edge_recorded.sh
#
# Knobs: the block below and README.md. Every wait is bounded; every
# process is started by PID (Kamailio in its own process group) and killed
# on exit.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

STEPS=${STEPS:-"100 200 400"}          # concurrent calls per step, in order, per set-up
SETUPS=${SETUPS:-"a c"}                # which set-ups, in order (a, b, c)
RAMP=${RAMP:-50}                       # new calls per second (also the hang-up rate)
HOLD_SECS=${HOLD_SECS:-20}             # every call stays up this long after the ramp
AGENTS=${AGENTS:-10}                   # agent UAs (users 1001..), one DID each
CALLERS=${CALLERS:-1}                  # caller UAs
THREADS=${THREADS:-2}                  # generator tokio worker threads
PHASES=${PHASES:-10}                   # generator send phases per 20 ms
LATE_MS=${LATE_MS:-20}                 # a packet this far behind its 20 ms slot is late
MAX_LOSS_PCT=${MAX_LOSS_PCT:-0.1}      # a step with this much loss (or more) is not clean
RETRIES=${RETRIES:-1}                  # a step failing only on loss/lateness is run again this many times
MAX_SETUP_SECS=${MAX_SETUP_SECS:-330}  # per set-up: no step starts unless its estimate ends within this
WAV_CHECK=${WAV_CHECK:-3}              # recordings per node and step checked with sox
RECORDING=${RECORDING:-1}              # 0: the nodes record nothing
BUILD=${BUILD:-1}                      # 1: cargo build --release --bins first; auto: only if missing; 0: never
HOTLINE_BIN=${HOTLINE_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/hotline}
LOAD_BIN=${LOAD_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/hotline-load}
KAMAILIO=${KAMAILIO:-$(command -v kamailio || echo /usr/sbin/kamailio)}
EDGE_CFG=${EDGE_CFG:-$ROOT/deploy/kamailio/kamailio.cfg}
EDGE_CHILDREN=${EDGE_CHILDREN:-4}      # Kamailio UDP workers (the shipped default)
EDGE_DEBUG=${EDGE_DEBUG:-1}            # Kamailio log level: 1 = warnings only
EDGE_SHM_MB=${EDGE_SHM_MB:-256}        # Kamailio -m (shared memory, MiB); empty: its default (64)
LOG_LEVEL=${LOG_LEVEL:-warn}           # hotline --log
NET_A=${NET_A:-127.0.7}                # per set-up: nodes .1 .2, edge .5, callers .10+, agents .21+
NET_B=${NET_B:-127.0.9}
NET_C=${NET_C:-127.0.8}
STORE_URL=${STORE_URL:-}               # postgres://…/db of a server to use; empty: a throw-away one
PG_PORT=${PG_PORT:-54349}              # port of the throw-away PostgreSQL
OUT=${OUT:-$HERE/edge-recorded-results-$(date +%Y-%m-%d).md}
KEEP=${KEEP:-1}                        # keep the work directory (configs, logs, load.json); 0 deletes it

CLK_TCK=$(getconf CLK_TCK)
NCPU=$(nproc)
T_START=$(date +%s)
LOADAVG0=$(cut -d" " -f1-3 /proc/loadavg)

log() { printf '[edge-rec %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for tool in curl jq awk ss psql setsid; do
    command -v "$tool" >/dev/null || die "$tool not found (psql: postgresql-client)"
done
[[ -x $KAMAILIO ]] || die "kamailio not found (Debian package kamailio; or set KAMAILIO=)"
[[ -f $EDGE_CFG ]] || die "no Kamailio configuration at $EDGE_CFG"
for s in $SETUPS; do [[ $s == [abc] ]] || die "SETUPS: unknown set-up '$s' (a, b or c)"; done
HAVE_SOX=0
command -v soxi >/dev/null && command -v sox >/dev/null && HAVE_SOX=1

# proc_ticks, rss_kib, machine_ticks, hexaddr, udp_drops, udp_rcvbuf_errors,
# forget, stop_pid, require_free, build_hotline, tree_ticks, edge_ticks,
# pg_ticks, pg_store, start_edge, edge_shm_max_mib, cpu_pressure_us,
# rx_backlog, media_toml, count_wavs, check_wavs, read_load_json,
# media_verdict, fmt: see lib.sh.
# shellcheck source=bench/load/lib.sh
source "$HERE/lib.sh"

# ---------------------------------------------------------------- processes
PIDS=()            # every process we started, killed on exit
NODE_PIDS=()       # the step's nodes
EDGE_PGID=""       # Kamailio's process group while it runs
EDGE_PID=""
PG_DIR=""          # the throw-away PostgreSQL we started, if any
PG_PID=""
WORK=$(mktemp -d /tmp/hotline-edge-rec.XXXXXX)

# Stop Kamailio's whole process group: TERM, 3 s, KILL.
stop_edge() {
    [[ -n $EDGE_PGID ]] || return 0
    kill -TERM -- "-$EDGE_PGID" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 -- "-$EDGE_PGID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$EDGE_PGID" 2>/dev/null || true
    if [[ -n $EDGE_PID ]]; then wait "$EDGE_PID" 2>/dev/null || true; forget "$EDGE_PID"; fi
    EDGE_PGID=""; EDGE_PID=""
}

stop_all() {
    local p alive
    stop_edge
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for _ in $(seq 1 30); do
        alive=0
        for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        ((alive)) || break
        sleep 0.1
    done
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    PIDS=()
    NODE_PIDS=()
}

# edge_cleanup (lib.sh): stop_all, the throw-away PostgreSQL, the work directory.
trap edge_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

healthz() { curl -s --max-time 2 "http://$1:8080/healthz" || true; }
# Sum of a /healthz number over the step's nodes.
healthz_sum() {
    local i v t=0
    for ((i = 0; i < NODES; i++)); do
        v=$(healthz "${NODE_IPS[$i]}" | jq -r "$1 // 0" 2>/dev/null || echo 0)
        t=$(( t + ${v:-0} ))
    done
    echo "$t"
}
# CPU ticks of the step's nodes: "sum per-node..."
node_ticks() {
    local p t s=0 per=()
    for p in "${NODE_PIDS[@]}"; do t=$(proc_ticks "$p"); t=${t:-0}; s=$((s + t)); per+=("$t"); done
    echo "$s ${per[*]}"
}

# ---------------------------------------------------------------- preflight
for s in $SETUPS; do
    case $s in a) net=$NET_A ;; b) net=$NET_B ;; c) net=$NET_C ;; esac
    require_free "$net.1:5060" "$net.2:5060" "$net.1:8080" "$net.2:8080" "$net.5:5060" "$net.10:5060" "$net.21:5060"
done
build_hotline
max_step=0
for n in $STEPS; do (( n > max_step )) && max_step=$n; done
(( max_step / AGENTS < 1000 )) || die "too many calls per agent"

pg_store "/tmp/hotline-edge-rec-pg.$$"
KAM_VERSION=$("$KAMAILIO" -v 2>/dev/null | head -1 | awk '{print $3}')

# ------------------------------------------------------------------- a step
# start_node DIR INDEX TRUNK_CIDR TRUNK_PROXY DB_URL: a node with
# recorded.sh's configuration on the shared store; NODE_PIDS+=.
start_node() {
    local d=$1/node$2 ip=${NODE_IPS[$2]} pid up=0
    mkdir -p "$d/var"
    media_toml bench/load/edge_recorded.sh "$ip:5060" "$ip:8080" "$ip" "$d" "$3" "$4" \
        "$AGENTS" "$RECORDING" 0 "$5" > "$d/hotline.toml"
    NO_COLOR=1 "$HOTLINE_BIN" serve --config "$d/hotline.toml" --log "$LOG_LEVEL" > "$d/hotline.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    NODE_PIDS+=("$pid")
    for _ in $(seq 1 300); do
        if healthz "$ip" | jq -e '.status == "ok"' >/dev/null 2>&1; then up=1; break; fi
        kill -0 "$pid" 2>/dev/null || { tail -20 "$d/hotline.log" >&2; die "node $2 exited"; }
        sleep 0.1
    done
    ((up)) || { tail -20 "$d/hotline.log" >&2; die "node $2 did not answer /healthz within 30 s"; }
}

# Wait (10 s at most) until every node hears the others' changes
# (/metrics hotline_store_following 1), then 1 s: a node's follower
# reloads every stored binding once at its start, and a REGISTER taken
# before that reload can be lost (see README.md, edge_cps.sh).
wait_following() {
    local i ok
    for _ in $(seq 1 100); do
        ok=1
        for ((i = 0; i < NODES; i++)); do
            curl -s --max-time 2 "http://${NODE_IPS[$i]}:8080/metrics" 2>/dev/null |
                grep -q '^hotline_store_following 1' || ok=0
        done
        ((ok)) && break
        sleep 0.1
    done
    ((ok)) || log "not every node reports hotline_store_following 1 after 10 s; going on"
    sleep 1
}

# Figures at one edge of the steady window (W = 0 start, 1 end).
sample_window() {
    local w=$1 i r
    local -a nt
    read -r -a nt < <(node_ticks)
    WIN_NODE[w]=${nt[0]}
    WIN_NODE_PER[w]="${nt[*]:1}"
    WIN_EDGE[w]=$(edge_ticks)
    WIN_PG[w]=$(pg_ticks)
    WIN_T[w]=$(date +%s%N)
    if ((w == 0)); then
        REGS=""
        for ((i = 0; i < NODES; i++)); do
            REGS+="${REGS:+ / }$(healthz "${NODE_IPS[$i]}" | jq -r '.registrations // "?"' 2>/dev/null || echo '?')"
        done
    else
        for ((i = 0; i < NODES; i++)); do
            r=$(rss_kib "${NODE_PIDS[$i]}"); RSS_END[i]=${r:-0}
        done
    fi
}

# run_step SETUP N DIR: fresh database, nodes and (b, c) edge; the
# generator; figures into the globals the caller reads.
run_step() {
    local setup=$1 n=$2 dir=$3 i db target
    mkdir -p "$dir"
    db=edge_rec_${setup}_${n}_$$_$((RANDOM))
    psql -X -q -d "$STORE_URL" -c "CREATE DATABASE $db" || die "CREATE DATABASE $db failed"
    NODE_PIDS=()
    for ((i = 0; i < NODES; i++)); do
        if ((VIA_EDGE)); then
            start_node "$dir" "$i" "$EDGE_IP/32" "$EDGE_IP:5060" "$PG_BASE/$db"
        else
            start_node "$dir" "$i" "$NET.8/29" "$NET.10:5060" "$PG_BASE/$db"
        fi
    done
    if ((VIA_EDGE)); then
        start_edge "$dir" "$NODES" "$NET.8" 29
        EDGE_PID=$EDGE_PGID
        target=$EDGE_IP:5060
    else
        target=${NODE_IPS[0]}:5060
    fi
    wait_following

    local ramp_s step_max deadline
    ramp_s=$(awk -v n="$n" -v r="$RAMP" 'BEGIN { printf "%d", n / r + 0.999 }')
    step_max=$(( 2 * ramp_s + HOLD_SECS + 45 ))
    local h0 e0 g0 mb0 mt0 ud0 ps0 t0 ed0 edge_hex r
    RSS_BEFORE=()
    for ((i = 0; i < NODES; i++)); do r=$(rss_kib "${NODE_PIDS[$i]}"); RSS_BEFORE+=("${r:-0}"); done
    RSS_END=(); REGS="-"
    WIN_NODE=(); WIN_NODE_PER=(); WIN_EDGE=(); WIN_PG=(); WIN_T=()
    read -r h0 _ < <(node_ticks)
    e0=$(edge_ticks); g0=$(pg_ticks)
    read -r mb0 mt0 < <(machine_ticks)
    ud0=$(udp_rcvbuf_errors)
    edge_hex=$(hexaddr "$EDGE_IP" 5060); ed0=$(udp_drops "$edge_hex")
    ps0=$(cpu_pressure_us); ps0=${ps0:-0}
    STEP_LOAD=$(cut -d" " -f1 /proc/loadavg)
    t0=$(date +%s%N)
    # --hotline: where the agents register and the caller sends its
    # INVITEs (the edge in b and c); RTP follows the SDP to the nodes.
    "$LOAD_BIN" --hotline "$target" --calls "$n" --ramp-per-sec "$RAMP" --hold-secs "$HOLD_SECS" \
        --agents "$AGENTS" --agent-ip "$NET.21" --callers "$CALLERS" --caller-ip "$NET.10" \
        --threads "$THREADS" --phases "$PHASES" --late-ms "$LATE_MS" \
        --steady-file "$dir/steady" --max-secs "$((step_max - 5))" \
        > "$dir/load.json" 2> "$dir/load.err" &
    local gen=$!
    PIDS+=("$gen")
    deadline=$(( $(date +%s) + step_max ))
    ACTIVE_MAX=0
    local tick=0 in_win=0 win_done=0 ac hb gb
    BL_N=0; BL_HOT_SUM=0; BL_HOT_MAX=0; BL_GEN_SUM=0; BL_GEN_MAX=0
    while kill -0 "$gen" 2>/dev/null; do
        if (( $(date +%s) > deadline )); then
            log "step $n overran its deadline: stopping the generator"
            stop_pid "$gen" 3
            break
        fi
        if ((!in_win && !win_done)) && [[ -f $dir/steady ]]; then
            sample_window 0; in_win=1
        elif ((in_win)) && grep -q "steady window over" "$dir/load.err" 2>/dev/null; then
            sample_window 1; in_win=0; win_done=1
        fi
        if (( tick % 10 == 0 )); then
            ac=$(healthz_sum '.calls.active')
            (( ac > ACTIVE_MAX )) && ACTIVE_MAX=$ac
            if ((in_win)); then
                read -r hb _ gb _ < <(rx_backlog "$NET" "${NODE_IPS[@]:0:$NODES}")
                BL_N=$((BL_N + 1)); BL_HOT_SUM=$((BL_HOT_SUM + hb)); BL_GEN_SUM=$((BL_GEN_SUM + gb))
                (( hb > BL_HOT_MAX )) && BL_HOT_MAX=$hb
                (( gb > BL_GEN_MAX )) && BL_GEN_MAX=$gb
            fi
        fi
        tick=$((tick + 1))
        sleep 0.1
    done
    gen_rc=0; wait "$gen" || gen_rc=$?
    forget "$gen"
    WIN_OK=$win_done
    # Let the nodes finish the calls (BYEs, recordings), bounded 10 s.
    for _ in $(seq 1 20); do
        [[ $(healthz_sum '.calls.active') == 0 ]] && break
        sleep 0.5
    done
    local t1 h1 e1 g1 mb1 mt1 ps1 started
    t1=$(date +%s%N)
    read -r h1 _ < <(node_ticks)
    e1=$(edge_ticks); g1=$(pg_ticks)
    read -r mb1 mt1 < <(machine_ticks)
    ps1=$(cpu_pressure_us); ps1=${ps1:-$ps0}
    UDP_DROPS=$(( $(udp_rcvbuf_errors) - ud0 ))
    EDGE_DROPS=-
    ((VIA_EDGE)) && EDGE_DROPS=$(( $(udp_drops "$edge_hex") - ed0 ))
    STEP_WALL_MS=$(( (t1 - t0) / 1000000 ))
    STEP_NODE_TICKS=$((h1 - h0)); STEP_EDGE_TICKS=$((e1 - e0)); STEP_PG_TICKS=$((g1 - g0))
    MACH_PCT=$(awk -v b=$((mb1 - mb0)) -v t=$((mt1 - mt0)) -v c="$NCPU" 'BEGIN { printf "%.0f", t ? b * 100 * c / t : 0 }')
    PRESSURE_PCT=$(awk -v d=$((ps1 - ps0)) -v ms="$STEP_WALL_MS" 'BEGIN { printf "%.0f", ms ? d / 10 / ms : 0 }')
    SPLIT=""
    local total=0 st=()
    for ((i = 0; i < NODES; i++)); do
        started=$(healthz "${NODE_IPS[$i]}" | jq -r '.calls.started // 0' 2>/dev/null || echo 0)
        st+=("${started:-0}"); total=$((total + ${started:-0}))
    done
    for ((i = 0; i < NODES; i++)); do
        SPLIT+="${SPLIT:+ / }${st[$i]}"
        if ((NODES > 1 && total > 0)); then
            SPLIT+=$(awk -v a="${st[$i]}" -v t="$total" 'BEGIN { printf " (%.1f %%)", a * 100 / t }')
        fi
    done
    SHM_USED=-
    ((VIA_EDGE)) && SHM_USED=$(edge_shm_max_mib "$dir")
    DEAD=""
    for ((i = 0; i < NODES; i++)); do
        kill -0 "${NODE_PIDS[$i]}" 2>/dev/null || DEAD="node $i exited"
    done
    if ((VIA_EDGE)) && [[ -z $DEAD ]] && ! kill -0 "$EDGE_PGID" 2>/dev/null; then DEAD="kamailio exited"; fi
    EDGE_WARN=-
    ((VIA_EDGE)) && EDGE_WARN=$(grep -c -E 'WARNING|ERROR|CRITICAL' "$dir/edge/kamailio.log" || true)
    # Stop: the edge, then the nodes (TERM, 8 s for the recordings, KILL).
    stop_edge
    for p in "${NODE_PIDS[@]}"; do stop_pid "$p" 8; done
    NODE_WARN=$(cat "$dir"/node*/hotline.log | sed 's/\x1b\[[0-9;]*m//g' | grep -c -E ' (ERROR|WARN) ' || true)
    psql -X -q -d "$STORE_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    local node_dirs=()
    for ((i = 0; i < NODES; i++)); do node_dirs+=("$dir/node$i"); done
    count_wavs "${node_dirs[@]}"
    if [[ $RECORDING == 1 ]]; then check_wavs "${node_dirs[@]}"; else wav_ok=0; wav_n=0; wav_check="-"; fi
}

# ---------------------------------------------------------------- set-ups
git_rev=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')
git_dirty=$(cd "$ROOT" && { git status --porcelain --untracked-files=no 2>/dev/null | grep -c . || true; })
SUMMARY=()     # "N|setup|row" of each step's last attempt
DETAIL=()
# CPU % of one core of TICKS over MS; ms of CPU per call.
pct() { awk -v d="$1" -v hz="$CLK_TCK" -v ms="$2" 'BEGIN { printf "%.1f", ms ? d * 100000 / hz / ms : 0 }'; }
ms_per_call() { awk -v d="$1" -v hz="$CLK_TCK" -v n="$2" 'BEGIN { if (n) printf "%.2f", d * 1000 / hz / n; else print "-" }'; }

run_setup() {    # run_setup a|b|c
    local setup=$1 title t_setup best=0 stop_reason="all steps clean" n attempt dir
    case $setup in
        a) NODES=1; VIA_EDGE=0; NET=$NET_A; title="one node, generator → node" ;;
        b) NODES=1; VIA_EDGE=1; NET=$NET_B; title="Kamailio + one node, generator → edge → node" ;;
        c) NODES=2; VIA_EDGE=1; NET=$NET_C; title="Kamailio + two nodes, generator → edge → nodes (round robin)" ;;
    esac
    NODE_IPS=("$NET.1" "$NET.2")
    EDGE_IP=$NET.5
    t_setup=$(date +%s)
    log "=== set-up $setup: $title ($NET.x)"
    local ROWS=()
    for n in $STEPS; do
        local ramp_s est elapsed
        ramp_s=$(awk -v n="$n" -v r="$RAMP" 'BEGIN { printf "%d", n / r + 0.999 }')
        est=$(( 2 * ramp_s + HOLD_SECS + 35 ))
        elapsed=$(( $(date +%s) - t_setup ))
        if (( elapsed + est > MAX_SETUP_SECS )); then
            stop_reason="time budget: $n calls not started (${elapsed} s used of MAX_SETUP_SECS=$MAX_SETUP_SECS)"
            log "$stop_reason"
            break
        fi
        local reason="" retry
        for attempt in $(seq 0 "$RETRIES"); do
            if (( attempt > 0 )); then
                elapsed=$(( $(date +%s) - t_setup ))
                if (( elapsed + est > MAX_SETUP_SECS )); then log "no time left to retry $n calls"; break; fi
            fi
            dir=$WORK/$setup/step-$n; (( attempt > 0 )) && dir=$WORK/$setup/step-$n-retry$attempt
            log "set-up $setup, step $n concurrent calls (ramp $RAMP cps, hold $HOLD_SECS s)$( (( attempt > 0 )) && echo ", retry $attempt")"
            run_step "$setup" "$n" "$dir"
            read_load_json "$dir/load.json"

            # Steady window: every node, the edge, PostgreSQL, the machine.
            local win_ms="" hot_pct_w per_call edge_pct pg_pct node_pct="" rss_txt="" kib_call rss_sum_b=0 rss_sum_e=0
            local -a p0 p1
            if ((WIN_OK)); then
                win_ms=$(( (WIN_T[1] - WIN_T[0]) / 1000000 ))
                hot_pct_w=$(pct $(( WIN_NODE[1] - WIN_NODE[0] )) "$win_ms")
                edge_pct=$(pct $(( WIN_EDGE[1] - WIN_EDGE[0] )) "$win_ms")
                pg_pct=$(pct $(( WIN_PG[1] - WIN_PG[0] )) "$win_ms")
                read -r -a p0 <<<"${WIN_NODE_PER[0]}"
                read -r -a p1 <<<"${WIN_NODE_PER[1]}"
                for ((i = 0; i < NODES; i++)); do
                    node_pct+="${node_pct:+ + }$(pct $(( p1[i] - p0[i] )) "$win_ms")"
                    rss_txt+="${rss_txt:+ / }$(awk -v k="${RSS_END[$i]:-0}" 'BEGIN { printf "%.1f", k / 1024 }')"
                    rss_sum_b=$(( rss_sum_b + RSS_BEFORE[i] )); rss_sum_e=$(( rss_sum_e + ${RSS_END[$i]:-0} ))
                done
                per_call=$(awk -v p="$hot_pct_w" -v n="$live" 'BEGIN { if (n) printf "%.4f", p / n; else print "-" }')
                kib_call=$(awk -v a="$rss_sum_e" -v b="$rss_sum_b" -v n="$live" 'BEGIN { if (n && a) printf "%.0f", (a - b) / n; else print "-" }')
            else
                hot_pct_w=-; per_call=-; edge_pct=-; pg_pct=-; node_pct=-; rss_txt=-; kib_call=-
            fi
            ((VIA_EDGE)) || edge_pct=-
            [[ -n $PG_PID ]] || pg_pct=-
            local hot_ms edge_ms pg_ms
            hot_ms=$(ms_per_call "$STEP_NODE_TICKS" "$answered")
            edge_ms=$(ms_per_call "$STEP_EDGE_TICKS" "$answered")
            pg_ms=$(ms_per_call "$STEP_PG_TICKS" "$answered")
            ((VIA_EDGE)) || edge_ms=-
            [[ -n $PG_PID ]] || pg_ms=-
            local step_other backlog
            step_other=$(awk -v m="$MACH_PCT" -v h="$(pct $(( STEP_NODE_TICKS + STEP_EDGE_TICKS + STEP_PG_TICKS )) "$STEP_WALL_MS")" -v g="$gen_all" \
                'BEGIN { r = m - h - g; printf "%.0f", r < 0 ? 0 : r }')
            backlog=$(awk -v n="$BL_N" -v hs="$BL_HOT_SUM" -v hm="$BL_HOT_MAX" -v gs="$BL_GEN_SUM" -v gm="$BL_GEN_MAX" \
                'BEGIN { if (!n) { print "-"; exit } printf "%.0f / %.0f · %.0f / %.0f", hs / n / 1024, hm / 1024, gs / n / 1024, gm / 1024 }')

            media_verdict "$n" "$DEAD" "$dir"
            if [[ -z $reason ]] && ((!WIN_OK)); then reason="no steady window measured"; fi
            local verdict=${reason:-clean}
            retry=0
            if [[ -n $reason ]] && (( attempt < RETRIES )) && [[ $reason == loss* || $reason == *late* ]]; then
                retry=1
                verdict="$reason (retried)"
            fi
            (( attempt > 0 )) && verdict="retry $attempt: $verdict"
            local row
            row="| $n | $answered / $failed | $(fmt "$loss" 4) ($lost of $expected) | $late ($(fmt "$max_late" 1)) | $late_phase | $(fmt "${setup_p50:-0}" 1) / $(fmt "${setup_p95:-0}" 1) / $(fmt "${setup_max:-0}" 1) | $hot_pct_w ($node_pct) | $per_call | $rss_txt | $kib_call | $edge_pct | $pg_pct | $hot_ms | $edge_ms | $pg_ms | $SHM_USED | $(fmt "$gen_pct" 1) ($(fmt "$lag" 1)) | $UDP_DROPS / $EDGE_DROPS | $backlog | $MACH_PCT / $step_other / $PRESSURE_PCT | $STEP_LOAD | $REGS | $SPLIT | $wavs ($wav_ok of $wav_n) | $NODE_WARN / $EDGE_WARN | $verdict |"
            ROWS+=("$row")
            SUMMARY+=("$n|$setup|$title|$(fmt "$loss" 4)|$late|$hot_pct_w|$per_call|$rss_txt|$kib_call|$edge_pct|$edge_ms|$pg_pct|$pg_ms|$wavs ($wav_ok of $wav_n)|$SPLIT|$MACH_PCT|$verdict")
            log "set-up $setup, step $n: answered $answered, failed $failed, loss $(fmt "$loss" 4) %, late $late (max $(fmt "$max_late" 1) ms); hotline $hot_pct_w % ($node_pct; $per_call %/call), RSS $rss_txt MiB ($kib_call KiB/call); kamailio $edge_pct %, postgres $pg_pct % (window); ms/call hotline $hot_ms, kamailio $edge_ms, postgres $pg_ms; registrations $REGS; calls per node $SPLIT; WAVs $wavs ($wav_check) -> $verdict"
            ((retry)) && continue
            break
        done
        if [[ -n $reason ]]; then
            stop_reason="$n calls: $reason"
            break
        fi
        best=$n
    done
    log "set-up $setup: most concurrent clean recorded calls $best ($stop_reason)"
    DETAIL+=("" "### ($setup) $title" "")
    DETAIL+=("Most concurrent recorded calls clean: **$best** (stopped: $stop_reason). Addresses $NET.x." "")
    DETAIL+=("| concurrent calls | answered / failed | loss % (lost of expected) | late > ${LATE_MS} ms (max ms) | late in ramp / steady / hang-ups | setup ms p50 / p95 / max | hotline CPU % of one core, all nodes (per node) | hotline CPU % per call | hotline RSS MiB per node | KiB per call | Kamailio CPU % | PostgreSQL CPU % | hotline ms/call (step) | Kamailio ms/call (step) | PostgreSQL ms/call (step) | Kamailio shm max MiB | generator CPU % (ticker max lag ms) | UDP drops: system / edge socket | RTP rx backlog KiB mean / max: nodes · others | machine CPU % of ${NCPU}00 / other processes % / CPU pressure % (step) | load avg (1 min) at start | registrations per node (steady) | calls started per node | WAVs (checked ok) | log lines: hotline ERROR+WARN / Kamailio WARNING+ | verdict |")
    DETAIL+=("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|")
    DETAIL+=("${ROWS[@]}")
}

for s in $SETUPS; do run_setup "$s"; done

# ------------------------------------------------------------------- report
{
    echo "## Concurrent recorded calls: nodes behind Kamailio against one node (bench/load/edge_recorded.sh, $(date '+%Y-%m-%d %H:%M %Z'))"
    echo
    echo "Command: \`STEPS=\"$STEPS\" SETUPS=\"$SETUPS\" RAMP=$RAMP HOLD_SECS=$HOLD_SECS AGENTS=$AGENTS THREADS=$THREADS PHASES=$PHASES RECORDING=$RECORDING EDGE_SHM_MB=$EDGE_SHM_MB bench/load/edge_recorded.sh\`" \
         "— hotline $git_rev (${git_dirty} modified tracked files), release build, \`--log $LOG_LEVEL\`, UDP, $AGENTS agents (one DID each), recording $([[ $RECORDING == 1 ]] && echo on || echo OFF);" \
         "Kamailio $KAM_VERSION (\`deploy/kamailio/kamailio.cfg\`, debug=$EDGE_DEBUG, $EDGE_CHILDREN UDP workers, shared memory ${EDGE_SHM_MB:-64 (default)} MiB);" \
         "PostgreSQL $PG_VERSION (a fresh database per step); $NCPU CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), load average before the run: $LOADAVG0, after: $(cut -d" " -f1-3 /proc/loadavg); total $(( $(date +%s) - T_START )) s."
    echo
    echo "| concurrent calls | set-up | loss % | late | hotline CPU % of one core (all nodes) | hotline CPU % per call | hotline RSS MiB per node | KiB per call | Kamailio CPU % | Kamailio ms/call (step) | PostgreSQL CPU % | PostgreSQL ms/call (step) | WAVs (checked ok) | calls started per node | machine CPU % (step) | verdict |"
    echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|"
    if ((${#SUMMARY[@]})); then
        printf '%s\n' "${SUMMARY[@]}" | sort -t'|' -k1,1n -k2,2 -s |
            awk -F'|' '{ printf "| %s | (%s) | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17 }'
    fi
    echo
    echo "Each step runs on fresh nodes, a fresh edge and a fresh database; every attempt is listed (a step failing only on loss or lateness was run again up to RETRIES=$RETRIES time(s): the machine is shared)."
    echo "CPU %, RSS and KiB per call are over the generator's steady window (all calls up: from 2 s after the last answer to 0.5 s before the first hang-up; the script samples at the window's ends, to ~0.1 s): hotline = the sum over the nodes (utime+stime), Kamailio = its whole process group, PostgreSQL = the postmaster and its children (utime+stime+cutime+cstime); per call = over the calls up together."
    echo "KiB per call = (the nodes' summed RSS at the end of the window − their RSS just before the generator started) / calls. \"ms/call (step)\" = CPU over the whole step (registrations, ramp, hold, hang-ups, drain) / answered calls: there is no signalling in the steady window, so this is where the edge and the store pay for a call."
    echo "Loss and lateness cover every packet of every call (ramp included); late = more than ${LATE_MS} ms behind the stream's 20 ms grid. WAVs checked: up to $WAV_CHECK per node: stereo, ≥ ${HOLD_SECS} s, 400 Hz caller tone left and 1 kHz agent tone right."
    printf '%s\n' "${DETAIL[@]}"
} > "$WORK/report.md"
cat "$WORK/report.md"
mkdir -p "$(dirname "$OUT")"
cp "$WORK/report.md" "$OUT"
log "written $OUT (total $(( $(date +%s) - T_START )) s)"
