#!/usr/bin/env bash
# bench/load/cps.sh - bounded calls-per-second load harness for hotline.
#
# Starts a release hotline on its own loopback addresses, registers one agent,
# runs a long-lived SIPp UAS as that agent's phone (agent_fast.xml: answers at
# once, no RTP) and steps a SIPp carrier (carrier_short.xml: INVITE, 200, ACK,
# hold -d ms, BYE) through increasing call rates. Each step sends
# RATE * STEP_SECS calls at RATE cps; the run stops at the first step that is
# not clean (see README.md) and reports the highest clean rate, with hotline's
# CPU and memory, SIPp's own CPU and what the rest of the machine used.
#
#   bench/load/cps.sh                          # defaults, < 5 min
#   STEPS="50 100" STEP_SECS=10 bench/load/cps.sh
#
# Knobs (environment): see the block below and README.md. Every wait is
# bounded; every process is started by PID and killed on exit.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

STEPS=${STEPS:-"25 50 100 150 200 300 400"}  # target rates, calls per second
STEP_SECS=${STEP_SECS:-20}          # seconds of traffic per step (-m = RATE * STEP_SECS)
HOLD_MS=${HOLD_MS:-1000}            # talk time between ACK and BYE (SIPp -d)
MAX_FAIL_PCT=${MAX_FAIL_PCT:-0.5}   # a step with more failed calls than this (%) is not clean
MIN_RATE_FRAC=${MIN_RATE_FRAC:-0.9} # ... nor one whose achieved rate is below this x target
LIMIT=${LIMIT:-}                    # SIPp -l; default RATE * (HOLD_MS + 3000) / 1000
MAX_TOTAL_SECS=${MAX_TOTAL_SECS:-240} # no step starts unless its worst case ends within this (s since start)
BUILD=${BUILD:-1}                   # 1: cargo build first (a no-op when fresh; a stale binary would measure old code); auto: only if missing; 0: never
HOTLINE_BIN=${HOTLINE_BIN:-$ROOT/target/release/hotline}
LOG_LEVEL=${LOG_LEVEL:-warn}
NET=${NET:-127.0.1}                 # hotline .1, carrier .10, agent .21
OUT=${OUT:-$HERE/results-$(date +%Y-%m-%d).md}
KEEP=${KEEP:-1}                     # keep the work directory (logs, CSVs); 0 deletes it
SETTLE_SECS=${SETTLE_SECS:-40}         # after the last step, wait this long at most for hotline to drain
STORE_URL=${STORE_URL:-}             # postgres://…: run on the shared PostgreSQL store ([store] url)
AFTER_SECS=${AFTER_SECS:-0}            # then, if > 0, sample RSS until this many seconds after the last step (does memory go back?)

HOTLINE_IP=$NET.1
CARRIER_IP=$NET.10
AGENT_IP=$NET.21
SIP=$HOTLINE_IP:5060
HTTP=$HOTLINE_IP:8080
AGENT_USER=1001
DID=12345
CLK_TCK=$(getconf CLK_TCK)
NCPU=$(nproc)
T_START=$(date +%s)
LOADAVG0=$(cut -d" " -f1-3 /proc/loadavg)

log() { printf '[cps %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for tool in sipp curl jq awk ss; do
    command -v "$tool" >/dev/null || die "$tool not found"
done

# ---------------------------------------------------------------- processes
PIDS=()            # every process we started, killed on exit
WORK=$(mktemp -d /tmp/hotline-cps.XXXXXX)

cleanup() {
    local rc=$? p alive
    trap - EXIT INT TERM
    # Carrier SIPp first (its PID is in a file written by its wrapper).
    for f in "$WORK"/step-*/sipp.pid; do
        [[ -f $f ]] || continue
        p=$(cat "$f" 2>/dev/null || true)
        if [[ -n $p ]]; then kill -TERM "$p" 2>/dev/null || true; fi
    done
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for _ in $(seq 1 30); do
        alive=0
        for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        ((alive)) || break
        sleep 0.1
    done
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ $KEEP == 1 ]]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------- /proc helpers
# proc_ticks, rss_kib, machine_ticks, hexaddr, udp_drops, udp_rcvbuf_errors,
# stat_col, rtt_summary, run_carrier_step, hotline_toml: see lib.sh.
# shellcheck source=bench/load/lib.sh
source "$HERE/lib.sh"
healthz() { curl -s --max-time 2 "http://$HTTP/healthz" || true; }

# ---------------------------------------------------------------- preflight
require_free "$SIP" "$HTTP" "$CARRIER_IP:5060" "$AGENT_IP:5060"

build_hotline

# ------------------------------------------------------------------ hotline
mkdir -p "$WORK/var" "$WORK/register" "$WORK/agent"
hotline_toml bench/load/cps.sh "$SIP" "$HTTP" "$HOTLINE_IP" "$WORK" "$CARRIER_IP/32" "$CARRIER_IP:5060" \
    "$AGENT_USER" "$DID" "$STORE_URL" > "$WORK/hotline.toml"

log "starting $HOTLINE_BIN (log level $LOG_LEVEL), work dir $WORK"
NO_COLOR=1 "$HOTLINE_BIN" serve --config "$WORK/hotline.toml" --log "$LOG_LEVEL" \
    > "$WORK/hotline.log" 2>&1 &
HOTLINE_PID=$!
PIDS+=("$HOTLINE_PID")
up=0
for _ in $(seq 1 200); do
    if healthz | jq -e '.status == "ok"' >/dev/null 2>&1; then up=1; break; fi
    kill -0 "$HOTLINE_PID" 2>/dev/null || { cat "$WORK/hotline.log" >&2; die "hotline exited"; }
    sleep 0.1
done
((up)) || { tail -20 "$WORK/hotline.log" >&2; die "hotline did not answer /healthz within 20 s"; }

# ------------------------------------------------------- agent registration
log "registering agent $AGENT_USER from $AGENT_IP"
(cd "$WORK/register" && timeout 30 sipp -sf "$ROOT/tests/sipp/agent_register.xml" \
    -i "$AGENT_IP" -bind_local -p 5060 -s "$AGENT_USER" -ap "pass$AGENT_USER" \
    -m 1 -timeout 15s -timeout_error -nostdin -trace_err "$SIP" > sipp.out 2>&1) ||
    { cat "$WORK"/register/*errors.log >&2 2>/dev/null || true; die "agent registration failed"; }
regs=$(healthz | jq -r '.registrations // empty')
[[ $regs == 1 ]] || die "healthz shows registrations=$regs after REGISTER"

log "starting agent phone (SIPp UAS, agent_fast.xml) on $AGENT_IP:5060"
(
    cd "$WORK/agent"
    exec sipp -sf "$HERE/agent_fast.xml" -i "$AGENT_IP" -bind_local -p 5060 -s "$AGENT_USER" \
        -nostdin -trace_err -max_log_size 2000000 -trace_stat -fd 1 -stf agent_stats.csv \
        -timeout "$((MAX_TOTAL_SECS + 120))s" > sipp.out 2>&1
) &
AGENT_PID=$!
PIDS+=("$AGENT_PID")
sleep 0.5
kill -0 "$AGENT_PID" 2>/dev/null || { cat "$WORK/agent/sipp.out" >&2; die "agent SIPp exited"; }

# ---------------------------------------------------------------- the steps
HOTLINE_HEX=$(hexaddr "$HOTLINE_IP" 5060)
AGENT_HEX=$(hexaddr "$AGENT_IP" 5060)
ROWS=()
best=0
stop_reason="all steps clean"
git_rev=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')
git_dirty=$(cd "$ROOT" && { git status --porcelain --untracked-files=no 2>/dev/null | grep -c . || true; })

for rate in $STEPS; do
    calls=$(( rate * STEP_SECS ))
    limit=${LIMIT:-$(( (rate * (HOLD_MS + 3000) + 999) / 1000 ))}
    # Worst case for this step: traffic + answer timeout (10 s) + hold + BYE timeout (5 s).
    step_max=$(( STEP_SECS + 10 + HOLD_MS / 1000 + 5 + 5 ))
    elapsed=$(( $(date +%s) - T_START ))
    if (( elapsed + step_max > MAX_TOTAL_SECS )); then
        stop_reason="time budget: ${rate} cps not started (${elapsed} s used of MAX_TOTAL_SECS=$MAX_TOTAL_SECS)"
        log "$stop_reason"
        break
    fi
    dir=$WORK/step-$rate
    mkdir -p "$dir"
    log "step $rate cps: $calls calls, -l $limit, hold $HOLD_MS ms"

    h0=$(proc_ticks "$HOTLINE_PID"); a0=$(proc_ticks "$AGENT_PID")
    read -r mb0 mt0 < <(machine_ticks)
    hd0=$(udp_drops "$HOTLINE_HEX"); ad0=$(udp_drops "$AGENT_HEX"); sd0=$(udp_rcvbuf_errors)
    t0=$(date +%s%N)

    # SIPp's CPU: see run_carrier_step in lib.sh.
    run_carrier_step "$dir" \
        sipp -sf "$HERE/carrier_short.xml" -i "$CARRIER_IP" -bind_local -p 5060 -s "$DID" \
            -r "$rate" -rp 1000 -l "$limit" -m "$calls" -d "$HOLD_MS" \
            -timeout "${step_max}s" -timeout_error -nostdin \
            -trace_err -max_log_size 2000000 -trace_stat -fd 1 -stf stats.csv \
            -trace_rtt -rtt_freq 1 "$SIP"
    WRAP_PID=$!
    PIDS+=("$WRAP_PID")

    # Sample while the step runs (bounded by the step's worst case + 10 s).
    rss_max=0; active_max=0; ports_max=0; dialogs_max=0; tx_max=0; tasks_max=0
    deadline=$(( $(date +%s) + step_max + 10 ))
    while kill -0 "$WRAP_PID" 2>/dev/null; do
        if (( $(date +%s) > deadline )); then
            log "step $rate overran its deadline: killing SIPp"
            kill -TERM "$(cat "$dir/sipp.pid" 2>/dev/null)" 2>/dev/null || true
            break
        fi
        r=$(rss_kib "$HOTLINE_PID"); r=${r:-0}; (( r > rss_max )) && rss_max=$r
        hz=$(healthz)
        if [[ -n $hz ]]; then
            read -r ac po di tx ta < <(jq -r '[.calls.active, .media.rtp_port_pairs_in_use,
                .sip.dialogs, .sip.transactions, .tasks] | map(. // 0) | @tsv' <<<"$hz" 2>/dev/null || echo "0 0 0 0 0")
            (( ac > active_max )) && active_max=$ac
            (( po > ports_max )) && ports_max=$po
            (( di > dialogs_max )) && dialogs_max=$di
            (( tx > tx_max )) && tx_max=$tx
            (( ta > tasks_max )) && tasks_max=$ta
        fi
        sleep 1
    done
    rc=0; wait "$WRAP_PID" || rc=$?
    forget "$WRAP_PID"
    rm -f "$dir/sipp.pid"
    t1=$(date +%s%N)
    h1=$(proc_ticks "$HOTLINE_PID"); a1=$(proc_ticks "$AGENT_PID")
    h1=${h1:-$h0}; a1=${a1:-$a0}
    read -r mb1 mt1 < <(machine_ticks)
    r=$(rss_kib "$HOTLINE_PID"); r=${r:-0}; (( r > rss_max )) && rss_max=$r
    sipp_ticks=$(cat "$dir/sipp.cpu" 2>/dev/null || echo 0)
    hdrops=$(( $(udp_drops "$HOTLINE_HEX") - hd0 )); adrops=$(( $(udp_drops "$AGENT_HEX") - ad0 ))
    sdrops=$(( $(udp_rcvbuf_errors) - sd0 ))

    if ! kill -0 "$HOTLINE_PID" 2>/dev/null; then
        hotline_dead=1
    else
        hotline_dead=0
    fi

    ok=$(stat_col "$dir/stats.csv" 'SuccessfulCall(C)')
    failed=$(stat_col "$dir/stats.csv" 'FailedCall(C)')
    retrans=$(stat_col "$dir/stats.csv" 'Retransmissions(C)')
    agent_fail1=$(stat_col "$WORK/agent/agent_stats.csv" 'FailedCall(C)')
    done_calls=$(( ok + failed ))
    wall_ms=$(( (t1 - t0) / 1000000 ))
    rtt=$(find "$dir" -maxdepth 1 -name '*_rtt.csv' | head -1)
    # p50/p95/max setup (INVITE -> 200, ms, SIPp's 1 ms clock) and achieved
    # rate (answered calls between the first and the last answer).
    read -r p50 p95 pmax achieved < <(rtt_summary "$rtt")

    hot_pct=$(awk -v d=$(( h1 - h0 )) -v hz="$CLK_TCK" -v ms="$wall_ms" 'BEGIN { printf "%.1f", d * 100000 / hz / ms }')
    ms_per_call=$(awk -v d=$(( h1 - h0 )) -v hz="$CLK_TCK" -v n="$done_calls" 'BEGIN { if (n) printf "%.2f", d * 1000 / hz / n; else print "-" }')
    uac_pct=$(awk -v d="$sipp_ticks" -v hz="$CLK_TCK" -v ms="$wall_ms" 'BEGIN { printf "%.1f", d * 100000 / hz / ms }')
    uas_pct=$(awk -v d=$(( a1 - a0 )) -v hz="$CLK_TCK" -v ms="$wall_ms" 'BEGIN { printf "%.1f", d * 100000 / hz / ms }')
    # Whole machine busy, in % of one core (capacity NCPU*100), and the part
    # that was neither hotline nor our two SIPps.
    mach_pct=$(awk -v b=$(( mb1 - mb0 )) -v t=$(( mt1 - mt0 )) -v n="$NCPU" 'BEGIN { printf "%.0f", t ? b * 100 * n / t : 0 }')
    other_pct=$(awk -v m="$mach_pct" -v a="$hot_pct" -v b="$uac_pct" -v c="$uas_pct" 'BEGIN { o = m - a - b - c; printf "%.0f", o < 0 ? 0 : o }')
    rss_mib=$(awk -v k="$rss_max" 'BEGIN { printf "%.1f", k / 1024 }')
    fail_pct=$(awk -v f="$failed" -v n="$done_calls" 'BEGIN { printf "%.2f", n ? f * 100 / n : 100 }')

    reason=""
    if ((hotline_dead)); then reason="hotline exited"
    elif (( rc != 0 && rc != 1 )); then reason="SIPp exit $rc"
    elif awk -v p="$fail_pct" -v m="$MAX_FAIL_PCT" 'BEGIN { exit !(p > m) }'; then reason="failed ${fail_pct} % > ${MAX_FAIL_PCT} %"
    elif (( done_calls < calls )); then reason="only $done_calls of $calls calls completed"
    elif awk -v a="$achieved" -v r="$rate" -v f="$MIN_RATE_FRAC" 'BEGIN { exit !(a < r * f) }'; then reason="achieved ${achieved} cps < ${MIN_RATE_FRAC} x target"
    fi
    verdict=${reason:-clean}
    (( failed > 0 )) && [[ -z $reason ]] && verdict="clean ($failed failed)"

    ROWS+=("| $rate | $achieved | $done_calls | $failed ($fail_pct %) | $agent_fail1 | $retrans | $hot_pct | $ms_per_call | $rss_mib | $p50 / $p95 / $pmax | $hdrops / $adrops / $sdrops | $active_max | $tx_max | $ports_max | $uac_pct | $uas_pct | $other_pct | $mach_pct | $verdict |")
    log "step $rate: achieved ${achieved} cps, $done_calls calls, $failed failed, UDP drops $hdrops/$adrops/$sdrops, hotline ${hot_pct}% (${ms_per_call} ms/call), RSS ${rss_mib} MiB, setup p50/p95 ${p50}/${p95} ms, SIPp ${uac_pct}%+${uas_pct}%, machine ${mach_pct}% -> $verdict"

    if [[ -n $reason ]]; then
        stop_reason="$rate cps: $reason"
        break
    fi
    best=$rate

    # Let the calls of this step end before the next (bounded 10 s): a call
    # that hotline never clears shows up as calls.active > 0 here.
    for _ in $(seq 1 20); do
        [[ $(healthz | jq -r '.calls.active // 0') == 0 ]] && break
        sleep 0.5
    done
done

# ------------------------------------------------------------------- report
# Leak check: after the last step, wait (at most SETTLE_SECS) for calls,
# dialogs and transactions to drain (UDP server transactions linger ~32 s,
# Timer J) and record what is left.
settle_start=$(date +%s)
final_hz=$(healthz)
while (( $(date +%s) - settle_start < SETTLE_SECS )); do
    final_hz=$(healthz)
    [[ $(jq -r '(.calls.active // 0) + (.sip.dialogs // 0) + (.sip.transactions // 0)
                + (.media.rtp_port_pairs_in_use // 0)' <<<"$final_hz" 2>/dev/null || echo 1) == 0 ]] && break
    sleep 1
done
settle_secs=$(( $(date +%s) - settle_start ))
# Memory after the load: RSS once every lingering transaction (64xT1 at
# most) has expired, sampled until AFTER_SECS after the last step.
after_line=""
if (( AFTER_SECS > 0 )); then
    while (( $(date +%s) - settle_start < AFTER_SECS )); do sleep 1; done
    after_kib=$(rss_kib "$HOTLINE_PID")
    after_line="hotline RSS ${AFTER_SECS} s after the last step: $(( ${after_kib:-0} / 1024 )) MiB."
fi
sed "s/\x1b\\[[0-9;]*m//g" "$WORK/hotline.log" > "$WORK/hotline.plain.log" || true
err_lines=$(grep -m 20 -E " (ERROR|WARN) " "$WORK/hotline.plain.log" || true)
n_err=$(grep -c " ERROR " "$WORK/hotline.plain.log" || true)
n_warn=$(grep -c " WARN " "$WORK/hotline.plain.log" || true)

{
    echo "## hotline calls-per-second (bench/load/cps.sh, $(date '+%Y-%m-%d %H:%M %Z'))"
    echo
    echo "Highest clean rate: **$best cps** (stopped: $stop_reason)."
    echo
    echo "Command: \`STEPS=\"$STEPS\" STEP_SECS=$STEP_SECS HOLD_MS=$HOLD_MS bench/load/cps.sh\`" \
         "— hotline $git_rev (${git_dirty} modified tracked files), release build, \`--log $LOG_LEVEL\`," \
         "UDP, one agent, $NCPU CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), load average before the run: ${LOADAVG0:-?}."
    echo
    echo "| target cps | achieved cps | calls | failed (UAC) | failed (UAS, cumulative) | SIPp retrans | hotline CPU % of 1 core | hotline CPU ms/call | hotline RSS MiB (max) | setup ms p50 / p95 / max | UDP rcvbuf drops: hotline / UAS / system | max active calls | max SIP transactions | max RTP pairs | SIPp UAC CPU % | SIPp UAS CPU % | rest of machine CPU % | machine CPU % (of ${NCPU}00) | verdict |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "CPU % = (utime+stime) over the step's wall time (traffic + tail), 100 = one core."
    echo "Setup = SIPp rtd from INVITE sent to 200 received (1 ms clock). Achieved cps = answered calls / time between first and last answer."
    echo "hotline ${settle_secs} s after the last step: \`$(jq -c '{calls, sip, media, tasks, rss_bytes}' <<<"$final_hz" 2>/dev/null || echo '?')\`"
    [[ -n $after_line ]] && echo "$after_line"
    echo "hotline log: $n_err ERROR, $n_warn WARN lines."
    if [[ -n $err_lines ]]; then
        echo
        echo "First ERROR/WARN lines of hotline's log:"
        echo
        echo '```'
        cut -c1-400 <<<"$err_lines"
        echo '```'
    fi
} > "$WORK/report.md"
cat "$WORK/report.md"
mkdir -p "$(dirname "$OUT")"
cp "$WORK/report.md" "$OUT"
log "written $OUT"
