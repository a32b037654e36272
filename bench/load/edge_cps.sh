#!/usr/bin/env bash
# bench/load/edge_cps.sh - calls per second of hotline nodes behind the
# Kamailio edge (deploy/kamailio/kamailio.cfg) against one node alone, on
# the same machine, one set-up after the other:
#
#   a  one node,             carrier -> node
#   b  Kamailio + one node,  carrier -> edge -> node
#   c  Kamailio + two nodes, carrier -> edge -> both nodes (round robin)
#
# All three run on one PostgreSQL store (a fresh database per set-up), so
# they pay the same store cost. The agent (SIPp UAS agent_fast.xml, answers
# at once, no RTP) registers once: to the node in (a), through the edge in
# (b) and (c) (its REGISTER gets a Path; every node rings it through the
# edge). Each set-up steps a SIPp carrier (carrier_short.xml) through
# STEPS as cps.sh does and stops at the first step that is not clean.
#
#   bench/load/edge_cps.sh
#   STEPS="50 100 200 300" STEP_SECS=10 bench/load/edge_cps.sh
#
# Knobs: the block below and README.md. Every wait is bounded; every
# process is started by PID (Kamailio in its own process group) and killed
# on exit.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

STEPS=${STEPS:-"50 100 200 300"}     # target rates, calls per second
STEP_SECS=${STEP_SECS:-10}          # seconds of traffic per step (-m = RATE * STEP_SECS)
HOLD_MS=${HOLD_MS:-1000}            # talk time between ACK and BYE (SIPp -d)
MAX_FAIL_PCT=${MAX_FAIL_PCT:-0.5}   # a step with more failed calls than this (%) is not clean
MIN_RATE_FRAC=${MIN_RATE_FRAC:-0.9} # ... nor one whose achieved rate is below this x target
LIMIT=${LIMIT:-}                    # SIPp -l; default RATE * (HOLD_MS + 3000) / 1000
SETUPS=${SETUPS:-"a b c"}           # which set-ups, in order
MAX_SETUP_SECS=${MAX_SETUP_SECS:-150} # per set-up: no step starts unless its worst case ends within this
BUILD=${BUILD:-1}                   # 1: cargo build --release first; auto: only if missing; 0: never
HOTLINE_BIN=${HOTLINE_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/hotline}
KAMAILIO=${KAMAILIO:-$(command -v kamailio || echo /usr/sbin/kamailio)}
EDGE_CFG=${EDGE_CFG:-$ROOT/deploy/kamailio/kamailio.cfg}
EDGE_CHILDREN=${EDGE_CHILDREN:-4}   # Kamailio UDP workers (the shipped default)
EDGE_DEBUG=${EDGE_DEBUG:-1}         # Kamailio log level: 1 = warnings only
EDGE_SHM_MB=${EDGE_SHM_MB:-}        # Kamailio -m (shared memory, MiB); empty: its default (64)
LOG_LEVEL=${LOG_LEVEL:-warn}        # hotline --log
NET=${NET:-127.0.6}                 # nodes .1 .2, edge .5, carrier .10, agent .21
STORE_URL=${STORE_URL:-}            # postgres://…/db of a server to use; empty: a throw-away one
PG_PORT=${PG_PORT:-54339}           # port of the throw-away PostgreSQL
SETTLE_SECS=${SETTLE_SECS:-10}      # after a set-up's last step, wait this long at most for calls to end
OUT=${OUT:-$HERE/edge-results-$(date +%Y-%m-%d).md}
KEEP=${KEEP:-1}                     # keep the work directory (logs, CSVs); 0 deletes it

NODE_IPS=("$NET.1" "$NET.2")
EDGE_IP=$NET.5
CARRIER_IP=$NET.10
AGENT_IP=$NET.21
AGENT_USER=1001
DID=12345
CLK_TCK=$(getconf CLK_TCK)
NCPU=$(nproc)
LOADAVG0=$(cut -d" " -f1-3 /proc/loadavg)

log() { printf '[edge-cps %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for tool in sipp curl jq awk ss psql setsid; do
    command -v "$tool" >/dev/null || die "$tool not found (sipp: Debian sip-tester; psql: postgresql-client)"
done
[[ -x $KAMAILIO ]] || die "kamailio not found (Debian package kamailio; or set KAMAILIO=)"
[[ -f $EDGE_CFG ]] || die "no Kamailio configuration at $EDGE_CFG"
for s in $SETUPS; do [[ $s == [abc] ]] || die "SETUPS: unknown set-up '$s' (a, b or c)"; done

# shellcheck source=bench/load/lib.sh
source "$HERE/lib.sh"

# ---------------------------------------------------------------- processes
PIDS=()            # every process we started, killed on exit
EDGE_PGID=""       # Kamailio's process group while it runs
PG_DIR=""          # the throw-away PostgreSQL we started, if any
WORK=$(mktemp -d /tmp/hotline-edge-cps.XXXXXX)

stop_all() {
    local p f alive
    for f in "$WORK"/*/step-*/sipp.pid; do
        [[ -f $f ]] || continue
        p=$(cat "$f" 2>/dev/null || true)
        if [[ -n $p ]]; then kill -TERM "$p" 2>/dev/null || true; fi
    done
    if [[ -n $EDGE_PGID ]]; then kill -TERM -- "-$EDGE_PGID" 2>/dev/null || true; fi
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for _ in $(seq 1 30); do
        alive=0
        for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        if [[ -n $EDGE_PGID ]] && kill -0 -- "-$EDGE_PGID" 2>/dev/null; then alive=1; fi
        ((alive)) || break
        sleep 0.1
    done
    if [[ -n $EDGE_PGID ]]; then kill -KILL -- "-$EDGE_PGID" 2>/dev/null || true; fi
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    PIDS=()
    EDGE_PGID=""
}

# edge_cleanup (lib.sh): stop_all, the throw-away PostgreSQL, the work directory.
trap edge_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# tree_ticks, edge_ticks, pg_ticks, pg_store, start_edge, edge_shm_max_mib:
# see lib.sh.
PG_PID=""
healthz() { curl -s --max-time 2 "http://$1:8080/healthz" || true; }
ms_per_call() { awk -v d="$1" -v hz="$CLK_TCK" -v n="$2" 'BEGIN { if (n) printf "%.2f", d * 1000 / hz / n; else print "-" }'; }
pct() { awk -v d="$1" -v hz="$CLK_TCK" -v ms="$2" 'BEGIN { printf "%.1f", ms ? d * 100000 / hz / ms : 0 }'; }

# ---------------------------------------------------------------- preflight
require_free "${NODE_IPS[0]}:5060" "${NODE_IPS[1]}:5060" "${NODE_IPS[0]}:8080" "${NODE_IPS[1]}:8080" \
            "$EDGE_IP:5060" "$CARRIER_IP:5060" "$AGENT_IP:5060"

build_hotline

# --------------------------------------------------------------- PostgreSQL
pg_store "/tmp/hotline-edge-pg.$$"
KAM_VERSION=$("$KAMAILIO" -v 2>/dev/null | head -1 | awk '{print $3}')

# ------------------------------------------------------------------ set-ups
git_rev=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')
git_dirty=$(cd "$ROOT" && { git status --porcelain --untracked-files=no 2>/dev/null | grep -c . || true; })
SUMMARY=()
DETAIL=()

start_node() {   # start_node SETUP_DIR INDEX TRUNK_CIDR TRUNK_PROXY DB_URL -> NODE_PIDS+=
    local d=$1/node$2 ip=${NODE_IPS[$2]} pid up=0
    mkdir -p "$d/var"
    hotline_toml bench/load/edge_cps.sh "$ip:5060" "$ip:8080" "$ip" "$d" "$3" "$4" \
        "$AGENT_USER" "$DID" "$5" > "$d/hotline.toml"
    NO_COLOR=1 "$HOTLINE_BIN" serve --config "$d/hotline.toml" --log "$LOG_LEVEL" > "$d/hotline.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    NODE_PIDS+=("$pid")
    for _ in $(seq 1 200); do
        if healthz "$ip" | jq -e '.status == "ok"' >/dev/null 2>&1; then up=1; break; fi
        kill -0 "$pid" 2>/dev/null || { tail -20 "$d/hotline.log" >&2; die "node $2 exited"; }
        sleep 0.1
    done
    ((up)) || { tail -20 "$d/hotline.log" >&2; die "node $2 did not answer /healthz within 20 s"; }
}

run_setup() {    # run_setup a|b|c
    local setup=$1 nodes via_edge title target db db_url sd i
    case $setup in
        a) nodes=1; via_edge=0; title="one node, carrier → node" ;;
        b) nodes=1; via_edge=1; title="Kamailio + one node, carrier → edge → node" ;;
        c) nodes=2; via_edge=1; title="Kamailio + two nodes, carrier → edge → nodes (round robin)" ;;
    esac
    sd=$WORK/$setup
    mkdir -p "$sd/register" "$sd/agent"
    local t_setup
    t_setup=$(date +%s)
    log "=== set-up $setup: $title"

    db=edge_cps_${setup}_$$
    psql -X -q -d "$STORE_URL" -c "CREATE DATABASE $db" || die "CREATE DATABASE $db failed"
    db_url=$PG_BASE/$db

    NODE_PIDS=()
    for ((i = 0; i < nodes; i++)); do
        if ((via_edge)); then
            start_node "$sd" "$i" "$EDGE_IP/32" "$EDGE_IP:5060" "$db_url"
        else
            start_node "$sd" "$i" "$CARRIER_IP/32" "$CARRIER_IP:5060" "$db_url"
        fi
    done
    if ((via_edge)); then
        start_edge "$sd" "$nodes" "$CARRIER_IP"
        target=$EDGE_IP:5060
    else
        target=${NODE_IPS[0]}:5060
    fi

    # A REGISTER taken in a node's first moments can be forgotten by that
    # node: its follower's start-up reload of the stored bindings (which
    # may not hold the new one yet) replaces the table (seen 1 in ~5 runs).
    # So: register, check every node shows it, and register again (at most
    # 3 times) if one does not; the report says how many were needed.
    local attempt ok_regs=0 regs
    for attempt in 1 2 3; do
        log "registering agent $AGENT_USER from $AGENT_IP via $target (attempt $attempt)"
        (cd "$sd/register" && timeout 30 sipp -sf "$ROOT/tests/sipp/agent_register.xml" \
            -i "$AGENT_IP" -bind_local -p 5060 -s "$AGENT_USER" -ap "pass$AGENT_USER" \
            -m 1 -timeout 15s -timeout_error -nostdin -trace_err "$target" > "sipp-$attempt.out" 2>&1) ||
            { cat "$sd"/register/*errors.log >&2 2>/dev/null || true; die "agent registration failed (set-up $setup)"; }
        ok_regs=1
        for ((i = 0; i < nodes; i++)); do
            regs=""
            for _ in $(seq 1 30); do
                regs=$(healthz "${NODE_IPS[$i]}" | jq -r '.registrations // empty')
                [[ $regs == 1 ]] && break
                sleep 0.1
            done
            if [[ $regs != 1 ]]; then
                log "node $i: healthz shows registrations=$regs after REGISTER (set-up $setup, attempt $attempt)"
                ok_regs=0
            fi
        done
        ((ok_regs)) && break
    done
    ((ok_regs)) || die "the agent's registration is not on every node after 3 REGISTERs (set-up $setup)"
    REG_ATTEMPTS=$attempt

    local agent_pid
    (
        cd "$sd/agent"
        exec sipp -sf "$HERE/agent_fast.xml" -i "$AGENT_IP" -bind_local -p 5060 -s "$AGENT_USER" \
            -nostdin -trace_err -max_log_size 2000000 -trace_stat -fd 1 -stf agent_stats.csv \
            -timeout "$((MAX_SETUP_SECS + 60))s" > sipp.out 2>&1
    ) &
    agent_pid=$!
    PIDS+=("$agent_pid")
    sleep 0.5
    kill -0 "$agent_pid" 2>/dev/null || { cat "$sd/agent/sipp.out" >&2; die "agent SIPp exited"; }

    local node_hex=() agent_hex edge_hex
    for ((i = 0; i < nodes; i++)); do node_hex+=("$(hexaddr "${NODE_IPS[$i]}" 5060)"); done
    agent_hex=$(hexaddr "$AGENT_IP" 5060)
    edge_hex=$(hexaddr "$EDGE_IP" 5060)

    local best=0 best_row="" stop_reason="all steps clean" rate
    local ROWS=()
    for rate in $STEPS; do
        local calls limit step_max elapsed dir
        calls=$(( rate * STEP_SECS ))
        limit=${LIMIT:-$(( (rate * (HOLD_MS + 3000) + 999) / 1000 ))}
        step_max=$(( STEP_SECS + 10 + HOLD_MS / 1000 + 5 + 5 ))
        elapsed=$(( $(date +%s) - t_setup ))
        if (( elapsed + step_max > MAX_SETUP_SECS )); then
            stop_reason="time budget: ${rate} cps not started (${elapsed} s used of MAX_SETUP_SECS=$MAX_SETUP_SECS)"
            log "$stop_reason"
            break
        fi
        dir=$sd/step-$rate
        mkdir -p "$dir"
        log "set-up $setup, step $rate cps: $calls calls, -l $limit"

        local h0=0 h1=0 e0 e1 g0 g1 a0 a1 mb0 mt0 mb1 mt1 nd0=0 nd1=0 ad0 ed0 sd0 t0 t1 p
        for p in "${NODE_PIDS[@]}"; do h0=$(( h0 + $(proc_ticks "$p") )); done
        e0=$(edge_ticks); g0=$(pg_ticks); a0=$(proc_ticks "$agent_pid")
        read -r mb0 mt0 < <(machine_ticks)
        for ((i = 0; i < nodes; i++)); do nd0=$(( nd0 + $(udp_drops "${node_hex[$i]}") )); done
        ad0=$(udp_drops "$agent_hex"); ed0=$(udp_drops "$edge_hex"); sd0=$(udp_rcvbuf_errors)
        t0=$(date +%s%N)

        run_carrier_step "$dir" \
            sipp -sf "$HERE/carrier_short.xml" -i "$CARRIER_IP" -bind_local -p 5060 -s "$DID" \
                -r "$rate" -rp 1000 -l "$limit" -m "$calls" -d "$HOLD_MS" \
                -timeout "${step_max}s" -timeout_error -nostdin \
                -trace_err -max_log_size 2000000 -trace_stat -fd 1 -stf stats.csv \
                -trace_rtt -rtt_freq 1 "$target"
        local wrap_pid=$!
        PIDS+=("$wrap_pid")

        local rss_max=() active_max=0 deadline r ac hz
        for ((i = 0; i < nodes; i++)); do rss_max+=(0); done
        deadline=$(( $(date +%s) + step_max + 10 ))
        while kill -0 "$wrap_pid" 2>/dev/null; do
            if (( $(date +%s) > deadline )); then
                log "step $rate overran its deadline: killing SIPp"
                kill -TERM "$(cat "$dir/sipp.pid" 2>/dev/null)" 2>/dev/null || true
                break
            fi
            ac=0
            for ((i = 0; i < nodes; i++)); do
                r=$(rss_kib "${NODE_PIDS[$i]}"); r=${r:-0}
                (( r > rss_max[i] )) && rss_max[i]=$r
                hz=$(healthz "${NODE_IPS[$i]}")
                ac=$(( ac + $(jq -r '.calls.active // 0' <<<"$hz" 2>/dev/null || echo 0) ))
            done
            (( ac > active_max )) && active_max=$ac
            sleep 1
        done
        local rc=0
        wait "$wrap_pid" || rc=$?
        forget "$wrap_pid"
        rm -f "$dir/sipp.pid"
        t1=$(date +%s%N)
        local dead=0
        for p in "${NODE_PIDS[@]}"; do
            kill -0 "$p" 2>/dev/null || dead=1
            r=$(proc_ticks "$p"); h1=$(( h1 + ${r:-0} ))
        done
        local shm_used=-
        if ((via_edge)); then
            shm_used=$(edge_shm_max_mib "$sd")
        fi
        e1=$(edge_ticks); g1=$(pg_ticks); a1=$(proc_ticks "$agent_pid"); a1=${a1:-$a0}
        read -r mb1 mt1 < <(machine_ticks)
        if [[ -n $EDGE_PGID ]] && ! kill -0 "$EDGE_PGID" 2>/dev/null; then dead=2; fi
        for ((i = 0; i < nodes; i++)); do
            r=$(rss_kib "${NODE_PIDS[$i]}"); r=${r:-0}
            (( r > rss_max[i] )) && rss_max[i]=$r
            nd1=$(( nd1 + $(udp_drops "${node_hex[$i]}") ))
        done
        local ndrops adrops edrops sdrops sipp_ticks
        ndrops=$(( nd1 - nd0 )); adrops=$(( $(udp_drops "$agent_hex") - ad0 ))
        edrops=$(( $(udp_drops "$edge_hex") - ed0 )); sdrops=$(( $(udp_rcvbuf_errors) - sd0 ))
        sipp_ticks=$(cat "$dir/sipp.cpu" 2>/dev/null || echo 0)

        local ok failed retrans agent_fail done_calls wall_ms rtt p50 p95 pmax achieved
        ok=$(stat_col "$dir/stats.csv" 'SuccessfulCall(C)')
        failed=$(stat_col "$dir/stats.csv" 'FailedCall(C)')
        retrans=$(stat_col "$dir/stats.csv" 'Retransmissions(C)')
        agent_fail=$(stat_col "$sd/agent/agent_stats.csv" 'FailedCall(C)')
        done_calls=$(( ok + failed ))
        wall_ms=$(( (t1 - t0) / 1000000 ))
        rtt=$(find "$dir" -maxdepth 1 -name '*_rtt.csv' | head -1)
        read -r p50 p95 pmax achieved < <(rtt_summary "$rtt")

        local hot_ms edge_ms pg_ms hot_pct edge_pct pg_pct uac_pct uas_pct mach_pct other_pct fail_pct rss_txt=""
        hot_ms=$(ms_per_call $(( h1 - h0 )) "$done_calls")
        edge_ms=$(ms_per_call $(( e1 - e0 )) "$done_calls")
        pg_ms=$(ms_per_call $(( g1 - g0 )) "$done_calls")
        hot_pct=$(pct $(( h1 - h0 )) "$wall_ms")
        edge_pct=$(pct $(( e1 - e0 )) "$wall_ms")
        pg_pct=$(pct $(( g1 - g0 )) "$wall_ms")
        uac_pct=$(pct "$sipp_ticks" "$wall_ms")
        uas_pct=$(pct $(( a1 - a0 )) "$wall_ms")
        mach_pct=$(awk -v b=$(( mb1 - mb0 )) -v t=$(( mt1 - mt0 )) -v n="$NCPU" 'BEGIN { printf "%.0f", t ? b * 100 * n / t : 0 }')
        other_pct=$(awk -v m="$mach_pct" -v a="$hot_pct" -v b="$edge_pct" -v c="$pg_pct" -v d="$uac_pct" -v e="$uas_pct" \
            'BEGIN { o = m - a - b - c - d - e; printf "%.0f", o < 0 ? 0 : o }')
        for ((i = 0; i < nodes; i++)); do
            rss_txt+="${rss_txt:+ / }$(awk -v k="${rss_max[$i]}" 'BEGIN { printf "%.0f", k / 1024 }')"
        done
        fail_pct=$(awk -v f="$failed" -v n="$done_calls" 'BEGIN { printf "%.2f", n ? f * 100 / n : 100 }')
        # Not measured: no edge in this set-up; a PostgreSQL we did not start.
        if ((via_edge == 0)); then edge_ms=-; edge_pct=-; fi
        if [[ -z $PG_PID ]]; then pg_ms=-; pg_pct=-; fi

        local reason="" verdict
        if ((dead == 1)); then reason="a node exited"
        elif ((dead == 2)); then reason="kamailio exited"
        elif (( rc != 0 && rc != 1 )); then reason="SIPp exit $rc"
        elif awk -v p="$fail_pct" -v m="$MAX_FAIL_PCT" 'BEGIN { exit !(p > m) }'; then reason="failed ${fail_pct} % > ${MAX_FAIL_PCT} %"
        elif (( done_calls < calls )); then reason="only $done_calls of $calls calls completed"
        elif awk -v a="$achieved" -v r="$rate" -v f="$MIN_RATE_FRAC" 'BEGIN { exit !(a < r * f) }'; then reason="achieved ${achieved} cps < ${MIN_RATE_FRAC} x target"
        fi
        verdict=${reason:-clean}
        (( failed > 0 )) && [[ -z $reason ]] && verdict="clean ($failed failed)"

        local row="| $rate | $achieved | $done_calls | $failed ($fail_pct %) | $agent_fail | $retrans | $hot_ms | $edge_ms | $pg_ms | $hot_pct | $edge_pct | $pg_pct | $rss_txt | $shm_used | $p50 / $p95 / $pmax | $ndrops / $edrops / $adrops / $sdrops | $active_max | $uac_pct + $uas_pct | $other_pct | $mach_pct | $verdict |"
        ROWS+=("$row")
        log "set-up $setup, step $rate: achieved $achieved cps, $done_calls calls, $failed failed; ms/call hotline $hot_ms, kamailio $edge_ms, postgres $pg_ms; CPU % hotline $hot_pct, kamailio $edge_pct, postgres $pg_pct, SIPp $uac_pct+$uas_pct, machine $mach_pct; RSS $rss_txt MiB; edge shm max $shm_used MiB; setup p50/p95 $p50/$p95 ms; drops $ndrops/$edrops/$adrops/$sdrops -> $verdict"

        if [[ -n $reason ]]; then
            stop_reason="$rate cps: $reason"
            break
        fi
        best=$rate
        best_row="$hot_ms | $edge_ms | $pg_ms | $rss_txt | $p50 / $p95 / $pmax | $mach_pct"

        # Let this step's calls end before the next (bounded 10 s).
        for _ in $(seq 1 20); do
            ac=0
            for ((i = 0; i < nodes; i++)); do
                ac=$(( ac + $(healthz "${NODE_IPS[$i]}" | jq -r '.calls.active // 0' 2>/dev/null || echo 0) ))
            done
            ((ac == 0)) && break
            sleep 0.5
        done
    done

    # Drain, then how the calls were spread over the nodes.
    local settle_start split="" total=0 started=() n
    settle_start=$(date +%s)
    while (( $(date +%s) - settle_start < SETTLE_SECS )); do
        ac=0
        for ((i = 0; i < nodes; i++)); do
            ac=$(( ac + $(healthz "${NODE_IPS[$i]}" | jq -r '.calls.active // 0' 2>/dev/null || echo 0) ))
        done
        ((ac == 0)) && break
        sleep 1
    done
    for ((i = 0; i < nodes; i++)); do
        n=$(healthz "${NODE_IPS[$i]}" | jq -r '.calls.started // 0' 2>/dev/null || echo 0)
        started+=("$n"); total=$(( total + n ))
    done
    for ((i = 0; i < nodes; i++)); do
        split+="${split:+ / }${started[$i]}"
        if ((nodes > 1 && total > 0)); then
            split+=$(awk -v a="${started[$i]}" -v t="$total" 'BEGIN { printf " (%.1f %%)", a * 100 / t }')
        fi
    done
    log "set-up $setup: highest clean rate $best cps ($stop_reason); calls started per node: $split"

    local n_warn n_edge_warn
    n_warn=$(cat "$sd"/node*/hotline.log | sed 's/\x1b\[[0-9;]*m//g' | grep -c -E ' (ERROR|WARN) ' || true)
    n_edge_warn=0
    if ((via_edge)); then n_edge_warn=$(grep -c -E 'WARNING|ERROR|CRITICAL' "$sd/edge/kamailio.log" || true); fi

    if [[ -n $best_row ]]; then
        SUMMARY+=("| $setup | $title | **$best** | $best_row | $split | $stop_reason |")
    else
        SUMMARY+=("| $setup | $title | **0** | - | - | - | - | - | - | $split | $stop_reason |")
    fi
    DETAIL+=("" "### ($setup) $title" "")
    DETAIL+=("Highest clean rate **$best cps** (stopped: $stop_reason). Calls started per node (/healthz \`calls.started\`, all steps): $split. Log lines: hotline $n_warn ERROR/WARN, Kamailio $n_edge_warn WARNING/ERROR. REGISTERs needed until every node showed the agent: $REG_ATTEMPTS." "")
    DETAIL+=("| target cps | achieved cps | calls | failed (UAC) | failed (UAS, cumulative) | SIPp retrans | hotline ms/call (all nodes) | Kamailio ms/call | PostgreSQL ms/call | hotline CPU % | Kamailio CPU % | PostgreSQL CPU % | hotline RSS MiB max (per node) | Kamailio shm max used MiB | setup ms p50 / p95 / max | UDP drops: nodes / edge / UAS / system | max active calls | SIPp UAC + UAS CPU % | rest of machine CPU % | machine CPU % (of ${NCPU}00) | verdict |")
    DETAIL+=("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    DETAIL+=("${ROWS[@]}")

    stop_all
    psql -X -q -d "$STORE_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
}

for s in $SETUPS; do run_setup "$s"; done

# ------------------------------------------------------------------- report
{
    echo "## Calls per second: two nodes behind Kamailio against one node (bench/load/edge_cps.sh, $(date '+%Y-%m-%d %H:%M %Z'))"
    echo
    echo "Command: \`STEPS=\"$STEPS\" STEP_SECS=$STEP_SECS HOLD_MS=$HOLD_MS EDGE_CHILDREN=$EDGE_CHILDREN${EDGE_SHM_MB:+ EDGE_SHM_MB=$EDGE_SHM_MB}${SETUPS:+ SETUPS=\"$SETUPS\"} bench/load/edge_cps.sh\`" \
         "— hotline $git_rev (${git_dirty} modified tracked files), release build, \`--log $LOG_LEVEL\`, UDP, one agent;" \
         "Kamailio $KAM_VERSION (\`deploy/kamailio/kamailio.cfg\`, debug=$EDGE_DEBUG, $EDGE_CHILDREN UDP workers, shared memory ${EDGE_SHM_MB:-64 (default)} MiB);" \
         "PostgreSQL $PG_VERSION (a fresh database per set-up); $NCPU CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), load average before the run: $LOADAVG0."
    echo
    echo "| set-up | | highest clean cps | hotline ms/call (all nodes) | Kamailio ms/call | PostgreSQL ms/call | hotline RSS MiB max (per node) | setup ms p50 / p95 / max | machine CPU % (of ${NCPU}00) | calls started per node | stopped |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|"
    printf '%s\n' "${SUMMARY[@]}"
    echo
    echo "Figures of the highest clean step. ms/call = CPU (utime+stime; Kamailio: its whole process group; PostgreSQL: the postmaster, its children and the children it reaped) over the step's wall time / completed calls."
    printf '%s\n' "${DETAIL[@]}"
} > "$WORK/report.md"
cat "$WORK/report.md"
mkdir -p "$(dirname "$OUT")"
cp "$WORK/report.md" "$OUT"
log "written $OUT"
