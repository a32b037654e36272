#!/usr/bin/env bash
# bench/load/recorded.sh - bounded media load harness for hotline: N
# concurrent bridged, recorded calls with 20 ms PCMA RTP both ways.
#
# For each step N it starts a fresh release hotline on its own loopback
# addresses (recording on, one DID per agent), runs `hotline-load` (our own
# generator: K agent UAs + a caller UA, one shared 20 ms ticker for all
# streams), which ramps N calls, holds them HOLD_SECS, measures loss and
# lateness per packet and samples hotline's CPU and RSS over the steady
# window; then counts and checks the WAV recordings. It stops at the first
# step with loss >= MAX_LOSS_PCT, late packets, failed calls or bad
# recordings, and profiles hotline at the highest clean step (perf, or
# callgrind if perf does not work). See README-media.md.
#
#   bench/load/recorded.sh                        # defaults, < 8 min
#   STEPS="100 200" HOLD_SECS=10 PROFILE=0 bench/load/recorded.sh
#
# Every wait is bounded; every process is started by PID and killed on exit.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

STEPS=${STEPS:-"50 100 200 400 600 800"} # concurrent calls per step, in order
RAMP=${RAMP:-100}                      # new calls per second (also the hang-up rate)
HOLD_SECS=${HOLD_SECS:-20}             # every call stays up this long after the ramp
AGENTS=${AGENTS:-10}                   # agent UAs (users 1001..), one DID each
CALLERS=${CALLERS:-1}                  # caller UAs
THREADS=${THREADS:-2}                  # generator tokio worker threads (1 falls behind from ~600 calls)
PHASES=${PHASES:-10}                   # generator send phases per 20 ms (1: one burst per 20 ms)
LATE_MS=${LATE_MS:-20}                 # a packet this far behind its 20 ms slot is late
MAX_LOSS_PCT=${MAX_LOSS_PCT:-0.1}      # a step with this much loss (or more) is not clean
RETRIES=${RETRIES:-1}                  # a step failing only on loss/lateness is run again this many times
MAX_TOTAL_SECS=${MAX_TOTAL_SECS:-420}  # no step (or profile) starts unless it ends within this
PROFILE=${PROFILE:-auto}               # auto: perf if it works, else callgrind; perf; callgrind; 0
PROFILE_SECS=${PROFILE_SECS:-10}       # perf sampling time
STAT_SECS=${STAT_SECS:-5}              # perf stat (syscalls, context switches per packet) before sampling
CALLGRIND_CALLS=${CALLGRIND_CALLS:-20} # calls of the (slow) callgrind run
WAV_CHECK=${WAV_CHECK:-3}              # recordings per step checked with sox
RECORDING=${RECORDING:-1}              # 0: hotline records nothing (to see what recording costs)
SRTP=${SRTP:-0}                        # 1: every leg SRTP only (hotline requires it, the generator encrypts)
BUILD=${BUILD:-1}                      # 1: cargo build first (a no-op when fresh; a stale binary would measure old code); auto: only if missing; 0: never
HOTLINE_BIN=${HOTLINE_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/hotline}
HOTLINE_REV=${HOTLINE_REV:-}           # label for binaries not built from ROOT's tree (e.g. a clean export)
LOAD_BIN=${LOAD_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/hotline-load}
LOG_LEVEL=${LOG_LEVEL:-warn}
NET=${NET:-127.0.5}                    # hotline .1, callers .10+, agents .21+
OUT=${OUT:-$HERE/media-results-$(date +%Y-%m-%d).md}
KEEP=${KEEP:-1}                        # keep the work directory; 0 deletes it
NICE=${NICE:-0}                        # run hotline and the generator at this nice level (< 0 needs root)

HOTLINE_IP=$NET.1
SIP=$HOTLINE_IP:5060
HTTP=$HOTLINE_IP:8080
CLK_TCK=$(getconf CLK_TCK)
NCPU=$(nproc)
T_START=$(date +%s)
LOADAVG0=$(cut -d" " -f1-3 /proc/loadavg)

log() { printf '[media %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for tool in curl jq awk ss; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
HAVE_SOX=0
command -v soxi >/dev/null && command -v sox >/dev/null && HAVE_SOX=1

# proc_ticks, machine_ticks, udp_rcvbuf_errors, forget, stop_pid,
# require_free, build_hotline, cpu_pressure_us, rx_backlog, media_toml,
# count_wavs, check_wavs, read_load_json, media_verdict, fmt: see lib.sh.
# shellcheck source=bench/load/lib.sh
source "$HERE/lib.sh"

# ---------------------------------------------------------------- processes
PIDS=()
WORK=$(mktemp -d /tmp/hotline-media.XXXXXX)

cleanup() {
    local rc=$? p alive
    trap - EXIT INT TERM
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

healthz() { curl -s --max-time 2 "http://$HTTP/healthz" || true; }

# ---------------------------------------------------------------- preflight
require_free "$SIP" "$HTTP" "$NET.10:5060" "$NET.21:5060"
build_hotline

if (( NICE < 0 )) && [[ $(id -u) != 0 ]]; then die "NICE=$NICE needs root"; fi
max_step=0
for n in $STEPS; do (( n > max_step )) && max_step=$n; done
(( max_step / AGENTS < 1000 )) || die "too many calls per agent"

# Config: one DID per agent (12345000 -> 1001, 12345001 -> 1002 ...).
write_config() { # dir
    media_toml bench/load/recorded.sh "$SIP" "$HTTP" "$HOTLINE_IP" "$1" "$NET.8/29" "$NET.10:5060" \
        "$AGENTS" "$RECORDING" "$SRTP" > "$1/hotline.toml"
}

HOTLINE_PID=
start_hotline() { # dir [wrapper...]
    local dir=$1; shift
    write_config "$dir"
    mkdir -p "$dir/var"
    NO_COLOR=1 "$@" "$HOTLINE_BIN" serve --config "$dir/hotline.toml" --log "$LOG_LEVEL" \
        > "$dir/hotline.log" 2>&1 &
    HOTLINE_PID=$!
    PIDS+=("$HOTLINE_PID")
    local up=0
    for _ in $(seq 1 300); do
        if healthz | jq -e '.status == "ok"' >/dev/null 2>&1; then up=1; break; fi
        kill -0 "$HOTLINE_PID" 2>/dev/null || { cat "$dir/hotline.log" >&2; die "hotline exited"; }
        sleep 0.1
    done
    ((up)) || { tail -20 "$dir/hotline.log" >&2; die "hotline did not answer /healthz within 30 s"; }
}

# ---------------------------------------------------------------- one step
# run_step N dir [profile]: fills the globals below.
run_step() {
    local n=$1 dir=$2 profile=${3:-} calls=${4:-$1} hold=${5:-$HOLD_SECS}
    mkdir -p "$dir"
    if [[ $profile == callgrind ]]; then
        start_hotline "$dir" nice -n "$NICE" valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" \
            --dump-instr=no --collect-jumps=no
    else
        start_hotline "$dir" nice -n "$NICE"
    fi
    local ramp_s step_max deadline
    ramp_s=$(awk -v n="$calls" -v r="$RAMP" 'BEGIN { printf "%d", n / r + 0.999 }')
    step_max=$(( 2 * ramp_s + ${hold%.*} + 45 ))
    local h0 mb0 mt0 ud0 t0
    h0=$(proc_ticks "$HOTLINE_PID")
    read -r mb0 mt0 < <(machine_ticks)
    ud0=$(udp_rcvbuf_errors)
    ps0=$(cpu_pressure_us); ps0=${ps0:-0}
    t0=$(date +%s%N)
    local srtp_arg=()
    [[ $SRTP == 1 ]] && srtp_arg=(--srtp)
    nice -n "$NICE" "$LOAD_BIN" --hotline "$SIP" --calls "$calls" --ramp-per-sec "$RAMP" --hold-secs "$hold" \
        --agents "$AGENTS" --agent-ip "$NET.21" --callers "$CALLERS" --caller-ip "$NET.10" \
        --threads "$THREADS" --phases "$PHASES" --late-ms "$LATE_MS" --watch-pid "$HOTLINE_PID" \
        --steady-file "$dir/steady" --max-secs "$((step_max - 5))" "${srtp_arg[@]}" \
        > "$dir/load.json" 2> "$dir/load.err" &
    local gen=$!
    PIDS+=("$gen")
    deadline=$(( $(date +%s) + step_max ))
    active_max=0; pairs_max=0; tasks_max=0
    bl_n=0; bl_hot_sum=0; bl_hot_max=0; bl_hot_socks_max=0; bl_gen_sum=0; bl_gen_max=0; bl_gen_socks_max=0
    local perf_pid="" hz ac po ta
    while kill -0 "$gen" 2>/dev/null; do
        if (( $(date +%s) > deadline )); then
            log "step $n overran its deadline: stopping the generator"
            stop_pid "$gen" 3
            break
        fi
        if [[ -f $dir/steady ]]; then
            if [[ $profile == perf && -z $perf_pid ]]; then
                log "perf stat (${STAT_SECS} s), then perf record -g (${PROFILE_SECS} s) on hotline $HOTLINE_PID"
                (
                    perf stat -x, -o "$dir/perf-stat.csv" -p "$HOTLINE_PID" \
                        -e task-clock,context-switches,cpu-migrations,syscalls:sys_enter_sendto,syscalls:sys_enter_recvfrom,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex,raw_syscalls:sys_enter \
                        -- sleep "$STAT_SECS"
                    perf record -F 999 -g -p "$HOTLINE_PID" -o "$dir/perf.data" -- sleep "$PROFILE_SECS"
                ) > "$dir/perf-record.log" 2>&1 &
                perf_pid=$!
                PIDS+=("$perf_pid")
            fi
            if [[ ! -f $dir/steady_end ]] && grep -q "steady window over" "$dir/load.err" 2>/dev/null; then
                touch "$dir/steady_end"
            fi
            if [[ ! -f $dir/steady_end ]]; then
                read -r hb hs gb gs < <(rx_backlog "$NET" "$HOTLINE_IP")
                bl_n=$((bl_n + 1)); bl_hot_sum=$((bl_hot_sum + hb)); bl_gen_sum=$((bl_gen_sum + gb))
                (( hb > bl_hot_max )) && bl_hot_max=$hb
                (( hs > bl_hot_socks_max )) && bl_hot_socks_max=$hs
                (( gb > bl_gen_max )) && bl_gen_max=$gb
                (( gs > bl_gen_socks_max )) && bl_gen_socks_max=$gs
            fi
            hz=$(healthz)
            if [[ -n $hz ]]; then
                read -r ac po ta < <(jq -r '[.calls.active, .media.rtp_port_pairs_in_use, .tasks]
                    | map(. // 0) | @tsv' <<<"$hz" 2>/dev/null || echo "0 0 0")
                (( ac > active_max )) && active_max=$ac
                (( po > pairs_max )) && pairs_max=$po
                (( ta > tasks_max )) && tasks_max=$ta
            fi
        fi
        sleep 1
    done
    gen_rc=0; wait "$gen" || gen_rc=$?
    forget "$gen"
    if [[ -n $perf_pid ]]; then
        for _ in $(seq 1 $(( (PROFILE_SECS + STAT_SECS) * 10 + 50 ))); do kill -0 "$perf_pid" 2>/dev/null || break; sleep 0.1; done
        stop_pid "$perf_pid" 3
    fi
    # Let hotline finish the calls (BYEs, recordings), bounded 10 s.
    for _ in $(seq 1 20); do
        [[ $(healthz | jq -r '.calls.active // 0' 2>/dev/null) == 0 ]] && break
        sleep 0.5
    done
    local t1 h1 mb1 mt1
    t1=$(date +%s%N)
    h1=$(proc_ticks "$HOTLINE_PID"); h1=${h1:-$h0}
    read -r mb1 mt1 < <(machine_ticks)
    udp_drops=$(( $(udp_rcvbuf_errors) - ud0 ))
    ps1=$(cpu_pressure_us); ps1=${ps1:-$ps0}
    hotline_alive=0; kill -0 "$HOTLINE_PID" 2>/dev/null && hotline_alive=1
    step_wall_ms=$(( (t1 - t0) / 1000000 ))
    step_hot_pct=$(awk -v d=$((h1 - h0)) -v hz="$CLK_TCK" -v ms="$step_wall_ms" 'BEGIN { printf "%.1f", d * 100000 / hz / ms }')
    mach_pct=$(awk -v b=$((mb1 - mb0)) -v t=$((mt1 - mt0)) -v c="$NCPU" 'BEGIN { printf "%.0f", t ? b * 100 * c / t : 0 }')
    pressure_pct=$(awk -v d=$((ps1 - ps0)) -v ms="$step_wall_ms" 'BEGIN { printf "%.0f", ms ? d / 10 / ms : 0 }')
    stop_pid "$HOTLINE_PID" 8
    count_wavs "$dir"
    if [[ $RECORDING == 1 ]]; then check_wavs "$dir"; else wav_ok=0; wav_n=0; wav_check="-"; fi
}

# ---------------------------------------------------------------- the steps
ROWS=()
best=0
best_dir=
stop_reason="all steps clean"
git_rev=${HOTLINE_REV:-$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')}
git_dirty=$(cd "$ROOT" && { git status --porcelain --untracked-files=no 2>/dev/null | grep -c . || true; })
[[ -n $HOTLINE_REV ]] && git_dirty="clean export of $HOTLINE_REV: 0"

for n in $STEPS; do
    ramp_s=$(awk -v n="$n" -v r="$RAMP" 'BEGIN { printf "%d", n / r + 0.999 }')
    est=$(( 2 * ramp_s + HOLD_SECS + 15 ))
    elapsed=$(( $(date +%s) - T_START ))
    if (( elapsed + est > MAX_TOTAL_SECS )); then
        stop_reason="time budget: $n calls not started (${elapsed} s used of MAX_TOTAL_SECS=$MAX_TOTAL_SECS)"
        log "$stop_reason"
        break
    fi
  for attempt in $(seq 0 "$RETRIES"); do
    if (( attempt > 0 )); then
        elapsed=$(( $(date +%s) - T_START ))
        if (( elapsed + est > MAX_TOTAL_SECS )); then
            log "no time left to retry $n calls"
            break
        fi
    fi
    dir=$WORK/step-$n; (( attempt > 0 )) && dir=$WORK/step-$n-retry$attempt
    log "step $n concurrent calls (ramp $RAMP cps, hold $HOLD_SECS s)$( (( attempt > 0 )) && echo ", retry $attempt")"
    run_step "$n" "$dir"
    read_load_json "$dir/load.json"
    rest_pct=$(awk -v m="$mach_pct" -v h="$step_hot_pct" -v g="$gen_all" 'BEGIN { r = m - h - g; printf "%.0f", r < 0 ? 0 : r }')
    per_call_pct=$(awk -v p="${hot_pct:-0}" -v n="$live" 'BEGIN { if (n) printf "%.4f", p / n; else print "-" }')
    cpu_s_per_call_s=$(awk -v p="${hot_pct:-0}" -v n="$live" 'BEGIN { if (n) printf "%.6f", p / 100 / n; else print "-" }')
    rss_mib=$(awk -v k="$rss_e" 'BEGIN { printf "%.1f", k / 1024 }')
    kib_call=$(awk -v a="$rss_e" -v b="$rss_b" -v n="$live" 'BEGIN { if (n && a) printf "%.0f", (a - b) / n; else print "-" }')

    media_verdict "$n" "$( ((hotline_alive)) || echo "hotline exited")" "$dir"
    verdict=${reason:-clean}
    # Only timing (loss/lateness) failures are retried: the machine is shared.
    retry=0
    if [[ -n $reason ]] && (( attempt < RETRIES )) && [[ $reason == loss* || $reason == *late* ]]; then
        retry=1
        verdict="$reason (retried)"
    fi
    (( attempt > 0 )) && verdict="retry $attempt: $verdict"
    backlog=$(awk -v n="$bl_n" -v hs="$bl_hot_sum" -v hm="$bl_hot_max" -v hk="$bl_hot_socks_max" -v gs="$bl_gen_sum" -v gm="$bl_gen_max" -v gk="$bl_gen_socks_max" \
        'BEGIN { if (!n) { print "-"; exit } printf "%.0f / %.0f (%d) · %.0f / %.0f (%d)", hs / n / 1024, hm / 1024, hk, gs / n / 1024, gm / 1024, gk }')
    ROWS+=("| $n | $answered / $failed | $(fmt "$loss" 4) ($lost of $expected) | $late ($(fmt "$max_late" 1)) | $late_phase | $(fmt "$max_transit" 1) | $(fmt "$hot_pct" 1) | $per_call_pct | $cpu_s_per_call_s | $rss_mib | $kib_call | ${threads:--} | $(fmt "$gen_pct" 1) ($(fmt "$lag" 1)) | $udp_drops | $backlog | $mach_pct / $rest_pct / $pressure_pct | $wavs ($wav_ok of $wav_n) | $verdict |")
    log "step $n: answered $answered, failed $failed, loss $(fmt "$loss" 4) %, late $late (max $(fmt "$max_late" 1) ms), hotline $(fmt "$hot_pct" 1) % (${per_call_pct} %/call), RSS ${rss_mib} MiB (${kib_call} KiB/call), generator $(fmt "$gen_pct" 1) %, WAVs $wavs ($wav_check) -> $verdict"
    ((retry)) && continue
    break
  done
    if [[ -n $reason ]]; then
        stop_reason="$n calls: $reason"
        break
    fi
    best=$n
    best_dir=$dir
done

# ----------------------------------------------------------------- profile
PROFILE_MD=""
perf_ok() { perf stat -e task-clock true >/dev/null 2>&1; }
mode=$PROFILE
if [[ $mode == auto ]]; then
    if command -v perf >/dev/null && perf_ok; then mode=perf
    elif command -v valgrind >/dev/null; then mode=callgrind
    else mode=0; fi
fi
if [[ $mode != 0 ]] && (( best > 0 )); then
    ramp_s=$(awk -v n="$best" -v r="$RAMP" 'BEGIN { printf "%d", n / r + 0.999 }')
    if [[ $mode == perf ]]; then
        # Hold only as long as the profile needs (ramp + settle + PROFILE_SECS + margin).
        phold=$(( PROFILE_SECS + STAT_SECS + 6 ))
        est=$(( 2 * ramp_s + phold + 40 ))
    else
        phold=10
        est=$(( 3 * phold + 60 ))
    fi
    elapsed=$(( $(date +%s) - T_START ))
    if (( elapsed + est > MAX_TOTAL_SECS )); then
        PROFILE_MD="Profile skipped: time budget (${elapsed} s used, needs ~${est} s)."
        log "$PROFILE_MD"
    elif [[ $mode == perf ]]; then
        pdir=$WORK/profile
        log "profile: $best calls again with perf attached in the steady window"
        run_step "$best" "$pdir" perf "$best" "$phold"
        if [[ -s $pdir/perf.data ]]; then
            perf report -i "$pdir/perf.data" --stdio --no-children --sort dso -g none --percent-limit 0.5 \
                > "$pdir/report-dso.txt" 2>/dev/null || true
            perf report -i "$pdir/perf.data" --stdio --no-children --sort dso,symbol -g none --percent-limit 0.7 \
                > "$pdir/report-self.txt" 2>/dev/null || true
            perf report -i "$pdir/perf.data" --stdio --children --sort symbol -g none --percent-limit 4 \
                > "$pdir/report-children.txt" 2>/dev/null || true
            samples=$(grep -m1 '^# Samples:' "$pdir/report-self.txt" | sed 's/^# //; s/  */ /g' || true)
            PROFILE_MD=$(
                echo "Profile: \`perf record -F 999 -g -p <hotline> -- sleep $PROFILE_SECS\` in the steady window of a second run at $best calls (hotline $(jq -r '.steady.hotline_cpu_pct_of_core // 0 | . * 10 | round / 10' "$pdir/load.json" 2>/dev/null) % of one core under perf; $samples)."
                echo
                if [[ -s $pdir/perf-stat.csv ]]; then
                    pps=$(( best * 2 * 50 ))
                    echo "Per relayed RTP packet ($best calls = $pps packets/s into hotline; \`perf stat\` over ${STAT_SECS} s):"
                    echo
                    echo '```'
                    awk -F, -v pps="$pps" -v secs="$STAT_SECS" '
                        /^#/ || NF < 3 { next }
                        $3 == "task-clock" { printf "%-32s %10.1f µs CPU per packet (%.1f %% of one core)\n", $3, $1 * 1000 / (pps * secs), $1 / 10 / secs; next }
                        $1 ~ /^[0-9.]+$/ { printf "%-32s %10.2f per packet\n", $3, $1 / (pps * secs) }' "$pdir/perf-stat.csv"
                    echo '```'
                    echo
                fi
                echo "Self time by DSO:"
                echo
                echo '```'
                grep -vE '^#|^$' "$pdir/report-dso.txt" | head -12
                echo '```'
                echo
                echo "Self time by symbol (top 30, >= 0.7 %):"
                echo
                echo '```'
                grep -vE '^#|^$' "$pdir/report-self.txt" | head -30 | cut -c1-160
                echo '```'
                echo
                echo "Inclusive (children) time, >= 4 % (frame-pointer stacks: user-space chains are partial):"
                echo
                echo '```'
                grep -vE '^#|^$' "$pdir/report-children.txt" | head -40 | cut -c1-160
                echo '```'
            )
        else
            PROFILE_MD="Profile: perf produced no data (see $pdir/perf-record.log)."
        fi
    else
        pdir=$WORK/profile
        log "profile: callgrind, $CALLGRIND_CALLS calls held $phold s"
        run_step "$CALLGRIND_CALLS" "$pdir" callgrind "$CALLGRIND_CALLS" "$phold"
        out=$(find "$pdir" -maxdepth 1 -name 'callgrind.out*' 2>/dev/null | head -1 || true)
        if [[ -n $out ]]; then
            callgrind_annotate --inclusive=no "$out" 2>/dev/null | head -45 > "$pdir/annotate.txt" || true
            PROFILE_MD=$(
                echo "Profile: valgrind --tool=callgrind, $CALLGRIND_CALLS calls held $phold s (instruction counts, self):"
                echo; echo '```'; cut -c1-160 "$pdir/annotate.txt"; echo '```'
            )
        else
            PROFILE_MD="Profile: callgrind produced no data."
        fi
    fi
fi

# ------------------------------------------------------------------- report
{
    echo "## hotline recorded-call media load (bench/load/recorded.sh, $(date '+%Y-%m-%d %H:%M %Z'))"
    echo
    echo "Most concurrent $([[ $RECORDING == 1 ]] && echo "recorded calls" || echo "calls (recording OFF)") with < $MAX_LOSS_PCT % loss and no packet > $LATE_MS ms late: **$best** (stopped: $stop_reason)."
    echo
    echo "Command: \`STEPS=\"$STEPS\" RAMP=$RAMP HOLD_SECS=$HOLD_SECS AGENTS=$AGENTS THREADS=$THREADS PHASES=$PHASES RECORDING=$RECORDING SRTP=$SRTP NICE=$NICE bench/load/recorded.sh\`" \
         "— hotline $git_rev (${git_dirty} modified tracked files in the tree the script ran from), binaries \`$HOTLINE_BIN\`, \`$LOAD_BIN\`, \`--log $LOG_LEVEL\`," \
         "UDP, $AGENTS agents (one DID each), recording $([[ $RECORDING == 1 ]] && echo on || echo OFF), SRTP $([[ $SRTP == 1 ]] && echo "on every leg" || echo off), $NCPU CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), load average before the run: ${LOADAVG0:-?}."
    echo
    echo "| concurrent calls | answered / failed | loss % (lost of expected) | late > ${LATE_MS} ms (max ms) | late in ramp / steady / hang-ups | max transit ms | hotline CPU % of one core | CPU % per call | CPU-s per call-s | hotline RSS MiB | KiB per call | hotline threads | generator CPU % (ticker max lag ms) | UDP rcvbuf drops (system) | RTP rx backlog KiB mean / max (sockets): hotline · generator | machine CPU % of ${NCPU}00 / other processes % / CPU pressure % | WAVs (checked ok) | verdict |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "A step that failed only on loss or lateness was run again up to RETRIES=$RETRIES time(s) (the machine is shared; both attempts are listed)."
    echo
    echo "RTP rx backlog: bytes waiting in UDP receive queues (/proc/net/udp rx_queue, skb truesize, roughly 1 KiB per RTP packet), sampled once a second in the steady window: hotline's sockets vs the generator's; whoever has the backlog is the one behind."
    echo
    echo "Machine columns are over the whole step: busy CPU of the machine, what neither hotline nor the generator used (other jobs), and the share of time some task waited for a CPU (/proc/pressure/cpu). The generator uses $THREADS tokio thread(s) and $PHASES send phases per 20 ms."
    echo
    echo "CPU, RSS, threads and generator CPU are over the steady window (all calls up; from 2 s after the last answer to 0.5 s before the first hang-up); KiB per call = (RSS at the end of the window − RSS before the first call) / calls. Loss and lateness cover every packet of every call (ramp included). Late = more than ${LATE_MS} ms behind the stream's 20 ms grid (anchored at its earliest packet); transit = arrival − the generator's send time of that packet. Each step runs against a fresh hotline. WAVs checked: stereo, ≥ ${HOLD_SECS} s, 400 Hz caller tone left and 1 kHz agent tone right."
    if [[ -n $PROFILE_MD ]]; then
        echo
        echo "$PROFILE_MD"
    fi
    if [[ -n $best_dir && -f $best_dir/hotline.log ]]; then
        n_err=$(grep -c " ERROR " "$best_dir/hotline.log" || true)
        n_warn=$(grep -c " WARN " "$best_dir/hotline.log" || true)
        echo
        echo "hotline log at $best calls: $n_err ERROR, $n_warn WARN lines."
    fi
} > "$WORK/report.md"
cat "$WORK/report.md"
mkdir -p "$(dirname "$OUT")"
cp "$WORK/report.md" "$OUT"
log "written $OUT (total $(( $(date +%s) - T_START )) s)"
