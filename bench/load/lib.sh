# bench/load/lib.sh - helpers shared by the load harnesses (cps.sh,
# edge_cps.sh, recorded.sh, edge_recorded.sh). Sourced, not run: it
# defines functions and nothing else. A function that needs a harness's
# globals (PIDS, HAVE_SOX, the EDGE_* knobs ...) says so, and so does one
# that sets globals for its harness to read (checked with the harness:
# `shellcheck -x` on the harness).
# shellcheck shell=bash disable=SC2034,SC2153,SC2154

# utime+stime of a live process (clock ticks), or empty.
proc_ticks() {
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    s=${s##*) }
    # shellcheck disable=SC2086
    set -- $s
    echo $(( ${12} + ${13} ))
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || true; }
# "busy total" jiffies of the whole machine (all CPUs).
machine_ticks() {
    awk '/^cpu / {t=0; for (i=2; i<=NF; i++) t+=$i; print t-$5-$6, t; exit}' /proc/stat
}
# Kernel receive-buffer drops of the UDP socket(s) bound to IP:PORT
# (/proc/net/udp "drops" column), and the system-wide Udp RcvbufErrors.
hexaddr() {
    local IFS=. a b c d
    read -r a b c d <<<"$1"
    printf '%02X%02X%02X%02X:%04X' "$d" "$c" "$b" "$a" "$2"
}
udp_drops() { awk -v a="$1" '$2 == a { d += $NF } END { print d + 0 }' /proc/net/udp; }
udp_rcvbuf_errors() { awk '/^Udp:/ { n++; if (n == 2) print $6 }' /proc/net/snmp; }

# Column $2 of the last line of a SIPp -trace_stat CSV ($1).
stat_col() {
    awk -F';' -v want="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == want) c = i; next }
                           { last = $c } END { print (c && last != "") ? last : 0 }' "$1" 2>/dev/null || echo 0
}

# "p50 p95 max achieved" from a SIPp -trace_rtt CSV ($1, may be empty):
# setup (INVITE -> 200, ms, SIPp's 1 ms clock) percentiles and the achieved
# rate (answered calls between the first and the last answer).
rtt_summary() {
    if [[ -n $1 ]]; then
        awk -F';' 'NR > 1 && $2 != "" { n++; v[n] = $2 + 0; t = $1 + 0; if (n == 1) f = t; l = t }
            END {
                if (n == 0) { print "- - - 0"; exit }
                # insertion sort is too slow for 8000 values: use asort-free counting on ms
                for (i = 1; i <= n; i++) { k = int(v[i]); c[k]++; if (k > mx) mx = k }
                a = 0; p50 = p95 = -1
                for (k = 0; k <= mx; k++) { a += c[k]; if (p50 < 0 && a >= 0.50 * n) p50 = k; if (p95 < 0 && a >= 0.95 * n) p95 = k }
                rate = (n > 1 && l > f) ? (n - 1) * 1000 / (l - f) : 0
                printf "%d %d %d %.1f\n", p50, p95, mx, rate
            }' "$1"
    else
        echo "- - - 0"
    fi
}

# run_carrier_step DIR SIPP-ARGS...: runs the carrier SIPp in the background
# under a wrapper bash (its PID is $!), which writes SIPp's PID to
# DIR/sipp.pid and, once SIPp has exited, SIPp's CPU ticks to DIR/sipp.cpu:
# the wrapper reaps SIPp and then reads its own cutime/cstime (fields 16/17
# of /proc/self/stat), which /proc cannot give once SIPp has gone.
# The caller does `X=$!` right after.
run_carrier_step() {
    # shellcheck disable=SC2016
    bash -c '
        cd "$1"; shift
        "$@" > sipp.out 2>&1 &
        echo $! > sipp.pid
        wait $!; rc=$?
        s=$(cat /proc/$$/stat); s=${s##*) }; set -- $s
        echo "$(( ${14} + ${15} ))" > sipp.cpu
        exit $rc' wrapper "$@" &
}

# edge_cleanup: the EXIT trap of the edge harnesses: the script's own
# stop_all, then the throw-away PostgreSQL (PG_DIR) and the work directory
# (WORK, kept when KEEP is 1); exits with the status it was called with.
edge_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_all
    if [[ -n $PG_DIR ]]; then "$ROOT/scripts/pg_throwaway" stop "$PG_DIR" || true; fi
    if [[ $KEEP == 1 ]]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}

# toml_head WRITER SIP_ADDR HTTP_ADDR DATA_DIR
# prints what every harness's hotline configuration begins with: UDP SIP
# with the generator's loopback exempt from flood limits, the HTTP
# address, the data directory, no IVR flows, MD5 digest, call timers.
toml_head() {
    cat <<TOML
# Written by $1
[sip]
listen = "$2"
transports = ["udp"]
realm = "hotline.bench"

# The load generator registers every agent from one address: it is
# trusted, like an SBC in front of the agents would be.
[sip.flood]
exempt = ["127.0.0.0/8"]

[http]
listen = "$3"

[data]
dir = "$4/var"

# No IVR: the repository's ivr-flows/ would claim numbers and need groups.
[ivr]
flows_dir = "$4/no-flows"

[registrar]
min_expires = 60
digest_algorithms = ["MD5"]

[calls]
ring_timeout_secs = 10
no_response_secs = 5
shutdown_grace_secs = 2
session_expires_secs = 0

TOML
}

# toml_store [STORE_URL]: the shared PostgreSQL store's [store] section
# (instead of hotline.db) when STORE_URL is given, else nothing.
toml_store() {
    if [[ -n ${1:-} ]]; then
        printf '\n[store]\nurl = "%s"\n' "$1"
    fi
}

# hotline_toml WRITER SIP_ADDR HTTP_ADDR MEDIA_IP DATA_DIR TRUNK_CIDR TRUNK_PROXY AGENT DID [STORE_URL]
# prints the benchmark's hotline configuration: one agent, one DID ringing
# it, one carrier trunk admitting TRUNK_CIDR; [store] url when STORE_URL
# is given.
hotline_toml() {
    local writer=$1 sip=$2 http=$3 media=$4 data=$5 cidr=$6 proxy=$7 agent=$8 did=$9 store=${10:-}
    toml_head "$writer" "$sip" "$http" "$data"
    cat <<TOML
[media]
address = "$media"
rtp_port_min = 20000
rtp_port_max = 39999
rtp_timeout_secs = 0
codecs = ["PCMA", "PCMU"]

[[trunk]]
name = "carrier"
inbound_cidrs = ["$cidr"]
proxy = "$proxy"

[[agent]]
user = "$agent"
password = "pass$agent"

[[did]]
number = "$did"
ring = "sequential"
agents = ["$agent"]
TOML
    toml_store "$store"
}

# Remove a PID from PIDS once the process has been reaped (no PID reuse
# risk). The harness owns PIDS.
forget() {
    local p keep=()
    for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

# Stop a process we started: TERM, up to $2 s (default 5), then KILL;
# reap it and forget it.
stop_pid() {
    local p=$1 secs=${2:-5}
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 1 $((secs * 10))); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    forget "$p"
}

# Die unless every ADDR:PORT given is free (UDP and TCP).
require_free() {
    local addr
    for addr in "$@"; do
        if ss -Hlnu "( sport = :${addr##*:} )" 2>/dev/null | grep -q "${addr%:*}:" ||
           ss -Hlnt "( sport = :${addr##*:} )" 2>/dev/null | grep -q "${addr%:*}:"; then
            die "$addr is already in use (another harness or test running?)"
        fi
    done
}

# The release binary the harness measures, as $BUILD says (1: cargo build
# first, a no-op when fresh; auto: only if missing; 0: never); dies
# without one. Needs ROOT and HOTLINE_BIN.
# With LOAD_BIN set (the media harnesses) the generator is built and
# required too (`--bins`).
build_hotline() {
    local bins=() want=("$HOTLINE_BIN") b missing=0
    if [[ -n ${LOAD_BIN:-} ]]; then bins=(--bins); want+=("$LOAD_BIN"); fi
    for b in "${want[@]}"; do [[ -x $b ]] || missing=1; done
    case $BUILD in
        1) log "cargo build --release ${bins[*]}"; (cd "$ROOT" && cargo build --release "${bins[@]}") ;;
        auto) if ((missing)); then
                  log "cargo build --release ${bins[*]} (a binary is missing)"
                  (cd "$ROOT" && cargo build --release "${bins[@]}")
              fi ;;
        0) ;;
        *) die "BUILD must be auto, 1 or 0" ;;
    esac
    [[ -x $HOTLINE_BIN ]] || die "no hotline binary at $HOTLINE_BIN"
    if [[ -n ${LOAD_BIN:-} ]]; then [[ -x $LOAD_BIN ]] || die "no hotline-load binary at $LOAD_BIN"; fi
}

# ------------------------------------------------------ PostgreSQL, Kamailio
# (edge_cps.sh, edge_recorded.sh)

# CPU ticks (utime+stime+cutime+cstime) of every live process whose stat
# field $1 (counted after the command name: 2 = ppid, 3 = pgrp) is $2,
# plus process $2 itself: a process group (Kamailio) or a parent and its
# children (PostgreSQL's postmaster and its backends; exited backends are
# in the postmaster's cutime/cstime).
tree_ticks() {
    local idx=$1 id=$2 f s t=0
    local -a v
    for f in /proc/[0-9]*/stat; do
        { read -r s < "$f"; } 2>/dev/null || continue
        s=${s##*) }
        read -r -a v <<<"$s"
        # v[0] = state, so field N (1-based after the name) is v[N-1].
        if [[ ${v[$((idx - 1))]} == "$id" || ${f#/proc/} == "$id/stat" ]]; then
            t=$(( t + v[11] + v[12] + v[13] + v[14] ))
        fi
    done
    echo "$t"
}
# Kamailio's process group / the PostgreSQL we started (0 without).
edge_ticks() { if [[ -n ${EDGE_PGID:-} ]]; then tree_ticks 3 "$EDGE_PGID"; else echo 0; fi; }
pg_ticks() { if [[ -n ${PG_PID:-} ]]; then tree_ticks 2 "$PG_PID"; else echo 0; fi; }

# pg_store DIR: the PostgreSQL the harness runs on. With STORE_URL set, that
# server; else a throw-away one (scripts/pg_throwaway) in DIR on
# 127.0.0.1:PG_PORT, stopped by the harness's cleanup (it sets PG_DIR and
# PG_PID, the postmaster). Sets STORE_URL, PG_BASE (the URL without the
# database) and PG_VERSION. Needs ROOT, log, die.
pg_store() {
    if [[ -z $STORE_URL ]]; then
        PG_DIR=$1
        log "starting a throw-away PostgreSQL in $PG_DIR on 127.0.0.1:$PG_PORT"
        STORE_URL=$(timeout 90 "$ROOT/scripts/pg_throwaway" start "$PG_DIR" "$PG_PORT") ||
            die "scripts/pg_throwaway start failed (port $PG_PORT in use? set PG_PORT)"
        PG_PID=$(head -1 "$PG_DIR/data/postmaster.pid" 2>/dev/null || true)
        [[ -n $PG_PID ]] || die "no postmaster.pid in $PG_DIR/data"
    fi
    PG_BASE=${STORE_URL%/*}                 # postgres://user@host:port
    PG_VERSION=$(psql -X -At -d "$STORE_URL" -c 'SHOW server_version' 2>/dev/null) ||
        die "cannot reach PostgreSQL at $STORE_URL"
}

# start_edge DIR NODES CARRIER_IP [MASK]: Kamailio with EDGE_CFG as
# shipped in front of the first NODES of NODE_IPS (dispatcher list, port
# 5060), admitting CARRIER_IP/MASK (default 32) as carrier, listening on
# EDGE_IP:5060, its files, RPC socket and log in DIR. Its own process
# group (setsid): EDGE_PGID, killed as a group by the harness; its PID in
# PIDS. Waits (bounded) for its socket and 2 s for the first OPTIONS probes
# to see the nodes up. Needs KAMAILIO, EDGE_CFG, EDGE_SHM_MB,
# EDGE_CHILDREN, EDGE_DEBUG, log, die.
start_edge() {
    local d=$1/edge i pid
    mkdir -p "$d"
    : > "$d/dispatcher.list"
    for ((i = 0; i < $2; i++)); do
        echo "1 sip:${NODE_IPS[$i]}:5060 0 0 node=node-$i" >> "$d/dispatcher.list"
    done
    echo "1 $3 ${4:-32}" > "$d/carriers.list"
    # setsid: its own process group (a background job of this
    # non-interactive shell is no group leader, so setsid execs in place
    # and the PID is Kamailio's main process).
    local shm=()
    if [[ -n $EDGE_SHM_MB ]]; then shm=(-m "$EDGE_SHM_MB"); fi
    setsid "$KAMAILIO" -DD -E -f "$EDGE_CFG" -Y "$d" -w "$d" "${shm[@]}" \
        -A "EDGE_LISTEN=udp:$EDGE_IP:5060" \
        -A "EDGE_NODES_FILE=\"$d/dispatcher.list\"" \
        -A "EDGE_CARRIERS_FILE=\"$d/carriers.list\"" \
        -A "EDGE_CTL=\"unix:$d/kamailio_ctl\"" \
        -A "EDGE_CHILDREN=$EDGE_CHILDREN" -A "EDGE_DEBUG=$EDGE_DEBUG" \
        < /dev/null > "$d/kamailio.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    sleep 0.2
    local s
    local -a v
    s=$(cat "/proc/$pid/stat" 2>/dev/null) || { cat "$d/kamailio.log" >&2; die "kamailio exited"; }
    s=${s##*) }
    read -r -a v <<<"$s"
    [[ ${v[2]} == "$pid" ]] || die "kamailio is not its own process group leader (pgrp ${v[2]}, pid $pid)"
    EDGE_PGID=$pid
    for _ in $(seq 1 100); do
        ss -Hlnu "( sport = :5060 )" 2>/dev/null | grep -q "$EDGE_IP:" && break
        kill -0 "$pid" 2>/dev/null || { cat "$d/kamailio.log" >&2; die "kamailio exited"; }
        sleep 0.1
    done
    ss -Hlnu "( sport = :5060 )" 2>/dev/null | grep -q "$EDGE_IP:" || die "kamailio does not listen on $EDGE_IP:5060"
    # Let the first OPTIONS probes (every second) see the nodes up.
    sleep 2
    kill -0 "$pid" 2>/dev/null || { cat "$d/kamailio.log" >&2; die "kamailio exited"; }
}

# Most shared memory the edge whose files are in DIR has used so far, MiB
# (kamcmd core.shmmem max_used), or "-".
edge_shm_max_mib() {
    local m
    m=$(timeout 5 kamcmd -s "unix:$1/edge/kamailio_ctl" core.shmmem 2>/dev/null |
        awk '$1 == "max_used:" { printf "%.0f", $2 / 1048576 }' || true)
    echo "${m:--}"
}

# -------------------------------------------- media load (recorded.sh, edge_recorded.sh)

# Total µs some task waited for a CPU (PSI), or 0.
cpu_pressure_us() { awk '/^some/ { sub("total=", "", $5); print $5; exit }' /proc/pressure/cpu 2>/dev/null || echo 0; }

# X with D decimals.
fmt() { awk -v x="${1:-0}" -v d="$2" 'BEGIN { printf "%." d "f", x }'; }

# rx_backlog NET HOTLINE_IP...: packets waiting in UDP receive queues right
# now (/proc/net/udp rx_queue, bytes of skb truesize; ~1 KiB per RTP packet
# here): "hotline_bytes hotline_sockets generator_bytes generator_sockets" -
# hotline = sockets on the HOTLINE_IPs, generator = the other sockets on
# NET.x (an edge's SIP socket there too). Tells who is behind.
rx_backlog() {
    local net=$1 hot="" ip
    shift
    for ip in "$@"; do hot+=" $(hexaddr "$ip" 0 | cut -d: -f1)"; done
    awk -v net="$(hexaddr "$net.0" 0 | cut -c3-8)" -v hot="$hot " '
        function hex(s,   i, v) { v = 0; s = toupper(s); for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789ABCDEF", substr(s, i, 1)) - 1; return v }
        NR > 1 {
            split($2, a, ":"); ip = a[1]
            if (substr(ip, 3) != net) next
            split($5, q, ":"); rx = hex(q[2])
            if (rx == 0) next
            if (index(hot, " " ip " ")) { hb += rx; hs++ } else { gb += rx; gs++ }
        }
        END { printf "%d %d %d %d\n", hb, hs, gb, gs }' /proc/net/udp 2>/dev/null || echo "0 0 0 0"
}

# media_toml WRITER SIP_ADDR HTTP_ADDR MEDIA_IP DATA_DIR TRUNK_CIDR TRUNK_PROXY AGENTS RECORDING SRTP [STORE_URL]
# prints the media harnesses' hotline configuration: recording on when
# RECORDING is 1, every leg SRTP only when SRTP is 1, AGENTS agents (users
# 1001 ...) each with its own DID (12345000 -> 1001, 12345001 -> 1002 ...),
# one carrier trunk admitting TRUNK_CIDR; [store] url when STORE_URL is
# given.
media_toml() {
    local writer=$1 sip=$2 http=$3 media=$4 data=$5 cidr=$6 proxy=$7 agents=$8 rec=$9 srtp=${10} store=${11:-} i u
    local srtp_mode=off
    [[ $srtp == 1 ]] && srtp_mode=required
    toml_head "$writer" "$sip" "$http" "$data"
    cat <<EOT
[media]
address = "$media"
rtp_port_min = 20000
rtp_port_max = 40000
rtp_timeout_secs = 0
codecs = ["PCMA", "PCMU"]
srtp_agents = "$srtp_mode"

[recording]
enabled = $([[ $rec == 1 ]] && echo true || echo false)

[[trunk]]
name = "carrier"
inbound_cidrs = ["$cidr"]
proxy = "$proxy"
srtp = "$srtp_mode"
EOT
    for ((i = 0; i < agents; i++)); do
        u=$((1001 + i))
        printf '\n[[agent]]\nuser = "%s"\npassword = "pass%s"\n\n[[did]]\nnumber = "12345%03d"\nring = "sequential"\nagents = ["%s"]\n' \
            "$u" "$u" "$i" "$u"
    done
    toml_store "$store"
}

# count_wavs DIR...: finished recordings (wavs) and unfinished ones
# (parts) under each DIR/var/recordings.
count_wavs() {
    local d
    wavs=0; parts=0
    for d in "$@"; do
        [[ -d $d/var/recordings ]] || continue
        wavs=$(( wavs + $(find "$d/var/recordings" -name '*.wav' | wc -l) ))
        parts=$(( parts + $(find "$d/var/recordings" -name '*.wav.part' | wc -l) ))
    done
}

# check_wavs DIR...: check up to WAV_CHECK recordings under each
# DIR/var/recordings: stereo, >= HOLD_SECS long, caller tone (400 Hz) left
# and agent tone (1 kHz) right. Sets wav_ok, wav_n and wav_check ("ok/checked"
# and notes). Needs HAVE_SOX, WAV_CHECK, HOLD_SECS.
check_wavs() {
    local d f ok=0 n=0 ch dur l r lf rf notes=""
    wav_ok=0; wav_n=0
    ((HAVE_SOX)) || { wav_check="- (no sox)"; return; }
    for d in "$@"; do
        while IFS= read -r f; do
            [[ -n $f ]] || continue
            n=$((n + 1))
            ch=$(soxi -c "$f" 2>/dev/null || echo 0)
            dur=$(soxi -D "$f" 2>/dev/null || echo 0)
            read -r l lf < <(sox "$f" -n remix 1 stat 2>&1 | awk '/^RMS +amplitude/ {r=$3} /^Rough +frequency/ {q=$3} END {print r+0, q+0}')
            read -r r rf < <(sox "$f" -n remix 2 stat 2>&1 | awk '/^RMS +amplitude/ {r=$3} /^Rough +frequency/ {q=$3} END {print r+0, q+0}')
            if [[ $ch == 2 ]] && awk -v d="$dur" -v h="$HOLD_SECS" -v l="$l" -v r="$r" -v lf="$lf" -v rf="$rf" \
                'BEGIN { exit !(d >= h && l > 0.1 && r > 0.1 && lf > 300 && lf < 500 && rf > 850 && rf < 1150) }'; then
                ok=$((ok + 1))
            else
                notes+=" $(basename "$f"): ch=$ch dur=${dur}s L rms=$l ${lf}Hz R rms=$r ${rf}Hz;"
            fi
        done < <(find "$d/var/recordings" -name '*.wav' 2>/dev/null | sort | head -n "$WAV_CHECK")
    done
    wav_ok=$ok; wav_n=$n
    wav_check="$ok/$n$notes"
}

# read_load_json FILE: the figures of one hotline-load summary (an empty
# or broken file reads as nothing answered, 100 % loss), as globals:
# answered failed dropped loss late max_late max_transit lost expected
# live hot_pct rss_b rss_e threads gen_pct gen_all lag timed_out
# late_phase setup_p50 setup_p95 setup_max.
read_load_json() {
    local j=$1
    jq -e . "$j" >/dev/null 2>&1 || echo '{}' > "$j"
    _lj() { jq -r "$1 // empty" "$j" 2>/dev/null; }
    answered=$(_lj '.calls.answered'); answered=${answered:-0}
    failed=$(_lj '.calls.failed'); failed=${failed:-0}
    dropped=$(_lj '.calls.dropped_early'); dropped=${dropped:-0}
    loss=$(_lj '.loss_pct'); loss=${loss:-100}
    late=$(_lj '.late_packets'); late=${late:-0}
    max_late=$(_lj '.max_late_ms'); max_late=${max_late:-0}
    max_transit=$(_lj '.max_transit_ms'); max_transit=${max_transit:-0}
    lost=$(jq -r '(.packets.caller_to_agent.lost // 0) + (.packets.agent_to_caller.lost // 0)' "$j")
    expected=$(jq -r '(.packets.caller_to_agent.expected // 0) + (.packets.agent_to_caller.expected // 0)' "$j")
    hot_pct=$(_lj '.steady.hotline_cpu_pct_of_core')
    live=$(_lj '.steady.live_calls_min'); live=${live:-0}
    rss_b=$(_lj '.steady.hotline_rss_kib_before'); rss_b=${rss_b:-0}
    rss_e=$(_lj '.steady.hotline_rss_kib_end'); rss_e=${rss_e:-0}
    threads=$(_lj '.steady.hotline_threads')
    gen_pct=$(_lj '.steady.generator_cpu_pct_of_core')
    gen_all=$(_lj '.generator.cpu_pct_of_core'); gen_all=${gen_all:-0}
    lag=$(_lj '.ticker.max_lag_ms')
    timed_out=$(_lj '.timed_out')
    late_phase=$(jq -r '.late_by_phase | "\(.ramp // 0) / \(.steady // 0) / \(.tail // 0)"' "$j" 2>/dev/null || echo -)
    setup_p50=$(_lj '.calls.setup_ms.p50'); setup_p95=$(_lj '.calls.setup_ms.p95'); setup_max=$(_lj '.calls.setup_ms.max')
}

# media_verdict N DEAD DIR: why a step of N calls is not clean (sets
# reason; empty: clean), from read_load_json's globals, gen_rc, wavs/parts
# (count_wavs) and wav_* (check_wavs). DEAD: what exited that should not
# have ("hotline exited"), empty if nothing; DIR: the step's directory
# (load.err). Needs RECORDING, HAVE_SOX, MAX_LOSS_PCT, LATE_MS.
media_verdict() {
    local n=$1 dead=$2 dir=$3
    reason=""
    if [[ -n $dead ]]; then reason=$dead
    elif (( gen_rc != 0 )); then reason="generator exit $gen_rc ($(tail -1 "$dir/load.err" | cut -c1-120))"
    elif [[ $timed_out == true ]]; then reason="generator timed out"
    elif (( answered < n )); then reason="only $answered of $n calls answered"
    elif (( failed > 0 || dropped > 0 )); then reason="$failed failed, $dropped dropped early"
    elif awk -v l="$loss" -v m="$MAX_LOSS_PCT" 'BEGIN { exit !(l >= m) }'; then reason="loss $(fmt "$loss" 3) % >= $MAX_LOSS_PCT %"
    elif (( late > 0 )); then reason="$late packets late > $LATE_MS ms"
    elif (( live < n )); then reason="only $live calls up together in the steady window"
    elif [[ $RECORDING == 1 ]] && (( wavs < answered || parts > 0 )); then reason="$wavs WAVs (+$parts .part) for $answered calls"
    elif [[ $RECORDING == 1 ]] && ((HAVE_SOX)) && [[ ${wav_check%% *} != "$wav_ok/$wav_n" || $wav_ok != "$wav_n" || $wav_n == 0 ]]; then
        reason="recording check failed: $wav_check"
    fi
}
