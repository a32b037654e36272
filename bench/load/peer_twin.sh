#!/usr/bin/env bash
# bench/load/peer_twin.sh - hotline side by side with Kamailio + rtpengine,
# the same SIPp load, one run (issue 16 item 5).
#
# For each step N (default 400 800) it runs, one after the other:
#   peer:    SIPp UAC -> Kamailio (stateful proxy, record-route) + rtpengine
#            (userspace, 2 threads, relay only) -> SIPp UAS agent (-rtp_echo)
#   hotline: SIPp UAC -> hotline (B2BUA, DID -> one registered agent,
#            stereo WAV recording, call events) -> the same SIPp UAS agent
# with the SAME UAC scenario, media file, ramp, hold and UAS (the scenarios
# and media are copies of ../shared/bench-peer's, in bench/load/peer/), and
# prints the same columns for both plus the ratio hotline / peer.
#
#   bench/load/peer_twin.sh                        # steps 400 800, ~5 min
#   HOTLINE_BIN=/path/to/release/hotline HOTLINE_REV=8cc4bbc bench/load/peer_twin.sh 400
#   HOLD_MS=15000 RAMP_S=5 SYSTEMS=hotline bench/load/peer_twin.sh 50   # a quick try of one side
#
# Needs root (iptables packet counters; SIPp's play_pcap_audio sends the key
# through a raw socket) and kamailio, rtpengine, sipp, iptables, curl, jq
# (installed with apt-get when missing, INSTALL=0 to refuse). Builds nothing:
# point HOTLINE_BIN at a release binary. Traffic stays on $NET.x (127.0.16.x).
# Every wait is bounded; every process is started by PID and killed on exit
# (EXIT/INT/TERM trap: TERM, 3 s, KILL), the iptables chain is removed and a
# raised net.core.rmem_default restored.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

STEPS=${*:-${STEPS:-400 800}}          # concurrent calls per step
SYSTEMS=${SYSTEMS:-"peer hotline"}     # what runs at each step, in this order
HOLD_MS=${HOLD_MS:-25000}              # every call is held this long after its answer
RAMP_S=${RAMP_S:-10}                   # the N calls start over this many seconds
NET=${NET:-127.0.16}                   # peer .1, hotline .2, UAC .10, UAS agent .20
HOTLINE_BIN=${HOTLINE_BIN:-$ROOT/target/release/hotline}
HOTLINE_REV=${HOTLINE_REV:-}           # label for a binary not built from this tree
LOG_LEVEL=${LOG_LEVEL:-warn}           # hotline --log
RECORDING=${RECORDING:-1}              # hotline's [recording] enabled
RECORDING_FORMAT=${RECORDING_FORMAT:-pcm16}  # its [recording] format: pcm16, alaw, opus
KEEP_WAVS=${KEEP_WAVS:-0}              # 0: delete a step's recordings once counted and checked (disk)
INSTALL=${INSTALL:-1}                  # apt-get install what is missing
OUT=${OUT:-$HERE/peer-twin-results-$(date +%Y-%m-%d).md}
QUIET_LOAD=${QUIET_LOAD:-}             # e.g. 1.0: before each step wait (at most QUIET_WAIT_S) for the 1-min load average to drop below it
QUIET_WAIT_S=${QUIET_WAIT_S:-300}
# RMEM_DEFAULT=N (opt-in): raise net.core.rmem_default for the run (SIPp's
# echo socket drops above ~800 calls at the default); restored on exit.

PEER_IP=$NET.1; HOT_IP=$NET.2; UAC=$NET.10; UAS=$NET.20
UAC_MP=16000; UAS_MP=26000
DID=12345; AGENT=1001; AGENT_PW=pass1001
S=$HERE/peer/sipp; M=$HERE/peer/media; P=$HERE/peer
HZ=$(getconf CLK_TCK)
CH=HOTLINE_TWIN_CNT
T_START=$(date +%s)
LOADAVG0=$(cut -d' ' -f1-3 /proc/loadavg)

log() { printf '[twin %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ------------------------------------------------------------ preflight
[[ $(id -u) == 0 ]] || die "needs root (iptables counters, SIPp raw socket for the key pcap)"
need_pkgs=()
for t in kamailio:kamailio rtpengine:rtpengine-daemon rtpengine-ctl:rtpengine-utils sipp:sip-tester \
         iptables:iptables curl:curl jq:jq; do
    command -v "${t%%:*}" >/dev/null || need_pkgs+=("${t##*:}")
done
[[ -f /usr/lib/x86_64-linux-gnu/kamailio/modules/rtpengine.so ]] || need_pkgs+=(kamailio-extra-modules kamailio-utils-modules)
if ((${#need_pkgs[@]})); then
    ((INSTALL)) || die "missing: ${need_pkgs[*]} (INSTALL=0)"
    log "apt-get install ${need_pkgs[*]}"
    timeout 600 apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y --no-install-recommends \
        kamailio kamailio-extra-modules kamailio-utils-modules rtpengine-daemon rtpengine-utils \
        sip-tester iptables curl jq >/dev/null || die "apt-get install failed"
fi
[[ " $SYSTEMS " == *" hotline "* && ! -x $HOTLINE_BIN ]] && die "no hotline binary at $HOTLINE_BIN (cargo build --release --bins, or HOTLINE_BIN=)"
for a in "$PEER_IP:5080" "$HOT_IP:5060" "$HOT_IP:8080" "$UAC:5060" "$UAS:5070"; do
    if ss -Hlnu 2>/dev/null | awk '{print $4}' | grep -qx "$a" || ss -Hlnt 2>/dev/null | awk '{print $4}' | grep -qx "$a"; then
        die "$a is already in use (another run?)"
    fi
done

# ------------------------------------------------------------ processes
WORK=$(mktemp -d /tmp/hotline-twin.XXXXXX)
PIDS=()
RMEM_OLD=$(sysctl -n net.core.rmem_default)
cleanup() {
    local rc=$? p alive
    trap - EXIT INT TERM
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for _ in $(seq 1 30); do
        alive=0
        for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        ((alive)) || break
        sleep 0.1
    done
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
    iptables -w -D INPUT -i lo -p udp -j $CH 2>/dev/null; iptables -w -F $CH 2>/dev/null; iptables -w -X $CH 2>/dev/null
    [[ -n ${RMEM_DEFAULT:-} ]] && sysctl -q -w net.core.rmem_default="$RMEM_OLD"
    log "work directory kept: $WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
[[ -n ${RMEM_DEFAULT:-} ]] && sysctl -q -w net.core.rmem_default="$RMEM_DEFAULT"

forget() { local p keep=(); for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done; PIDS=("${keep[@]}"); }
stop_pid() { # pid [secs]: TERM, wait up to secs, KILL, reap
    local p=$1 secs=${2:-5}
    kill -TERM "$p" 2>/dev/null
    for _ in $(seq 1 $((secs * 10))); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    forget "$p"
}
wait_pid() { # pid secs: wait for it to exit by itself (bounded), then stop it; sets WAIT_RC
    local p=$1 secs=$2
    for _ in $(seq 1 $((secs * 10))); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && { log "pid $p still running after $secs s: stopping it"; kill -TERM "$p" 2>/dev/null; sleep 1; kill -KILL "$p" 2>/dev/null; }
    WAIT_RC=0; wait "$p" 2>/dev/null || WAIT_RC=$?
    forget "$p"
}

# ------------------------------------------------------------ /proc helpers
ticks() { # utime+stime of the given pids and their child processes (threads are in the process's own stat)
    local t=0 p q s
    for p in "$@"; do
        for q in $p $(pgrep -P "$p" 2>/dev/null); do
            s=$(cat "/proc/$q/stat" 2>/dev/null) || continue
            s=${s##*) }; set -- $s
            t=$((t + ${12} + ${13}))
        done
    done
    echo $t
}
sys_ticks() { # stime alone (time in the kernel: syscalls, the UDP stack) of the given pids and their children
    local t=0 p q s
    for p in "$@"; do
        for q in $p $(pgrep -P "$p" 2>/dev/null); do
            s=$(cat "/proc/$q/stat" 2>/dev/null) || continue
            s=${s##*) }; set -- $s
            t=$((t + ${13}))
        done
    done
    echo $t
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
sys_busy() { awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6}' /proc/stat; }   # busy idle (jiffies, all CPUs)

counters_setup() {
    iptables -w -N $CH 2>/dev/null; iptables -w -F $CH
    iptables -w -A $CH -s $UAC -p udp --sport $UAC_MP -j RETURN   # 1 UAC -> switch
    iptables -w -A $CH -d $UAS -p udp --dport $UAS_MP -j RETURN   # 2 switch -> UAS
    iptables -w -A $CH -s $UAS -p udp --sport $UAS_MP -j RETURN   # 3 UAS echo -> switch
    iptables -w -A $CH -d $UAC -p udp --dport $UAC_MP -j RETURN   # 4 switch -> UAC
    iptables -w -C INPUT -i lo -p udp -j $CH 2>/dev/null || iptables -w -I INPUT -i lo -p udp -j $CH
}
counters() { iptables -w -L $CH -v -n -x | awk 'NR>2{printf "%s ", $1}'; }

# ------------------------------------------------------------ the systems
MEDIA_PID=; SIG_PID=; HOTLINE_PID=
start_peer() { # dir
    local d=$1
    sed -e "s|@PEER_IP@|$PEER_IP|g" "$P/rtpengine.conf" > "$d/rtpengine.conf"
    sed -e "s|@PEER_IP@|$PEER_IP|g; s|@UAS@|$UAS|g; s|@WORK@|$d|g" "$P/kamailio.cfg" > "$d/kamailio.cfg"
    rtpengine --config-file="$d/rtpengine.conf" --pidfile="$d/rtpengine.pid" > "$d/rtpengine.log" 2>&1 &
    MEDIA_PID=$!; PIDS+=("$MEDIA_PID")
    kamailio -f "$d/kamailio.cfg" -DD -E -m 512 -M 16 > "$d/kamailio.log" 2>&1 &
    SIG_PID=$!; PIDS+=("$SIG_PID")
    local up=0
    for _ in $(seq 1 100); do
        kill -0 "$MEDIA_PID" 2>/dev/null && kill -0 "$SIG_PID" 2>/dev/null || break
        if rtpengine-ctl -ip "$PEER_IP" -port 9900 list numsessions >/dev/null 2>&1 &&
           ss -Hlnu 2>/dev/null | awk '{print $4}' | grep -qx "$PEER_IP:5080"; then up=1; break; fi
        sleep 0.1
    done
    ((up)) || { tail -5 "$d"/rtpengine.log "$d"/kamailio.log >&2; return 1; }
    sleep 1
}
peer_up() { rtpengine-ctl -ip "$PEER_IP" -port 9900 list numsessions 2>/dev/null | awk -F: '/sessions total/{gsub(/ /,"",$2); print $2}'; }

write_hotline_config() { # dir
    cat > "$1/hotline.toml" <<EOF
# Written by bench/load/peer_twin.sh
[sip]
listen = "$HOT_IP:5060"
realm = "hotline.bench"
transports = ["udp"]

[sip.flood]
exempt = ["127.0.0.0/8"]

[http]
listen = "$HOT_IP:8080"

[data]
dir = "$1/var"

# No IVR: the repository's ivr-flows/ would claim numbers and need groups.
[ivr]
flows_dir = "$1/no-flows"

[media]
address = "$HOT_IP"
rtp_port_min = 20000
rtp_port_max = 40000
rtp_timeout_secs = 0
codecs = ["PCMA", "PCMU"]
sounds_dir = "$ROOT/sounds"

[recording]
enabled = $([[ $RECORDING == 1 ]] && echo true || echo false)
format = "$RECORDING_FORMAT"

[registrar]
min_expires = 60
digest_algorithms = ["MD5"]

[calls]
ring_timeout_secs = 10
no_response_secs = 5
shutdown_grace_secs = 2
session_expires_secs = 0

[[trunk]]
name = "carrier"
inbound_cidrs = ["$UAC/32"]
proxy = "$UAC:5060"

[[agent]]
user = "$AGENT"
password = "$AGENT_PW"

[[did]]
number = "$DID"
ring = "sequential"
agents = ["$AGENT"]
EOF
}
healthz() { curl -s --max-time 2 "http://$HOT_IP:8080/healthz" 2>/dev/null; }
hotline_active() { healthz | jq -r '.calls.active // empty' 2>/dev/null; }
start_hotline() { # dir
    local d=$1
    write_hotline_config "$d"; mkdir -p "$d/var" "$d/no-flows"
    NO_COLOR=1 "$HOTLINE_BIN" serve --config "$d/hotline.toml" --log "$LOG_LEVEL" > "$d/hotline.log" 2>&1 &
    HOTLINE_PID=$!; PIDS+=("$HOTLINE_PID"); MEDIA_PID=$HOTLINE_PID; SIG_PID=
    local up=0
    for _ in $(seq 1 300); do
        healthz | jq -e '.status == "ok"' >/dev/null 2>&1 && { up=1; break; }
        kill -0 "$HOTLINE_PID" 2>/dev/null || break
        sleep 0.1
    done
    ((up)) || { tail -20 "$d/hotline.log" >&2; return 1; }
    # the agent registers from the UAS's own address and port, then the UAS takes that port
    (cd "$d" && timeout 20 sipp -sf "$S/register_agent.xml" -s $AGENT -au $AGENT -ap $AGENT_PW \
        -i $UAS -p 5070 -bind_local -m 1 -timeout 15s -nostdin -trace_err \
        "$HOT_IP:5060" > "$d/register.out" 2>&1)
    local rc=$?
    ((rc == 0)) || { log "agent REGISTER failed (sipp rc=$rc)"; tail -5 "$d"/*errors.log >&2 2>/dev/null; return 1; }
    sleep 0.5
}

# ------------------------------------------------------------ one run of the load
# drive N dir target service: the shared peer_baseline.sh's run_step, for any switch.
# Sets the R_* globals.
drive() {
    local N=$1 d=$2 target=$3 service=$4 rate tmo win
    rate=$(( (N + RAMP_S - 1) / RAMP_S ))
    tmo=$(( RAMP_S + HOLD_MS / 1000 + 30 ))
    win=$(( HOLD_MS / 1000 - 6 )); ((win < 3)) && win=3
    iptables -w -Z $CH
    R_LOAD=$(cut -d' ' -f1 /proc/loadavg)
    R_RSS0=$(rss_kib "$MEDIA_PID")
    cd "$d" || return 1   # sipp writes its *_errors.log into the cwd
    timeout $((tmo + 10)) sipp -sf "$S/uas_agent.xml" -i $UAS -p 5070 -mi $UAS -mp $UAS_MP -bind_local -rtp_echo \
        -m "$N" -timeout ${tmo}s -nostdin -trace_err -trace_screen -screen_file "$d/uas_screen.log" \
        -max_recv_loops 5000 > "$d/uas.out" 2>&1 &
    local uas=$!; PIDS+=("$uas")
    sleep 0.5
    timeout $((tmo + 10)) sipp -sf "$S/uac_ivr_load.xml" -s "$service" -i $UAC -p 5060 -mi $UAC -mp $UAC_MP -bind_local \
        -key audio_stream "$M/speech_8k.alaw,-1,8" -key dtmf_pcap "$M/dtmf_1_pt101.pcap" \
        -set hold_ms "$HOLD_MS" -set dtmf_delay_ms 2000 -r "$rate" -l "$N" -m "$N" -timeout ${tmo}s -nostdin \
        -trace_err -trace_screen -screen_file "$d/uac_screen.log" -trace_stat -fd 5 -stf "$d/uac_stat.csv" \
        "$target" > "$d/uac.out" 2>&1 &
    local uac=$!; PIDS+=("$uac")
    # window where all N calls are up: from ramp + 3 s until 3 s before the first BYE
    sleep $((RAMP_S + 3))
    local m0 s0 c0 u0 b0 i0 m1 s1 c1 u1 b1 i1
    m0=$(ticks "$MEDIA_PID"); s0=$( [[ -n $SIG_PID ]] && ticks "$SIG_PID" || echo 0); c0=$(ticks $uac); u0=$(ticks $uas)
    local k0 k1; k0=$(sys_ticks "$MEDIA_PID" $SIG_PID)
    read -r b0 i0 < <(sys_busy)
    if [[ -n $HOTLINE_PID ]]; then R_UP=$(hotline_active); else R_UP=$(peer_up); fi
    sleep $win
    m1=$(ticks "$MEDIA_PID"); s1=$( [[ -n $SIG_PID ]] && ticks "$SIG_PID" || echo 0); c1=$(ticks $uac); u1=$(ticks $uas)
    k1=$(sys_ticks "$MEDIA_PID" $SIG_PID)
    read -r b1 i1 < <(sys_busy)
    R_RSS1=$(rss_kib "$MEDIA_PID")
    wait_pid $uac $((tmo + 15)); R_RC=$WAIT_RC
    wait_pid $uas 20
    cd "$HERE" || true
    read -r R_C1 R_C2 R_C3 R_C4 < <(counters)
    echo "uac_to_switch=$R_C1 switch_to_uas=$R_C2 uas_echo_to_switch=$R_C3 switch_to_uac=$R_C4" > "$d/counters.txt"
    R_OK=$(awk -F'|' '/Successful call/{gsub(/ /,"",$3); print $3}' "$d/uac_screen.log" 2>/dev/null | tail -1)
    R_FAIL=$(awk -F'|' '/Failed call/{gsub(/ /,"",$3); print $3}' "$d/uac_screen.log" 2>/dev/null | tail -1)
    R_UFAIL=$(awk -F'|' '/Failed call/{gsub(/ /,"",$3); print $3}' "$d/uas_screen.log" 2>/dev/null | tail -1)
    local den=$(( win * HZ ))
    pc() { awk -v t="$1" -v d="$den" 'BEGIN{printf "%.1f", 100*t/d}'; }
    R_MEDIA=$(pc $((m1 - m0))); R_SIG=$(pc $((s1 - s0))); R_SW=$(pc $((m1 - m0 + s1 - s0))); R_KERN=$(pc $((k1 - k0)))
    R_UAC=$(pc $((c1 - c0))); R_UASC=$(pc $((u1 - u0)))
    R_BUSY=$(awk -v b=$((b1 - b0)) -v i=$((i1 - i0)) 'BEGIN{printf "%.0f", 100*b/(b+i)}')
    # what the machine did beside the switch and SIPp, in % of one core (other engineers' jobs)
    R_OTHER=$(awk -v b=$((b1 - b0)) -v i=$((i1 - i0)) -v own=$((m1 - m0 + s1 - s0 + c1 - c0 + u1 - u0)) -v n="$(nproc)" -v d="$den" \
        'BEGIN{o = 100*n*b/(b+i) - 100*own/d; printf "%.0f", o < 0 ? 0 : o}')
    R_WIN=$win
}

pct() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a>0) printf "%.3f", 100*(a-b)/a; else print "n/a"}'; }
ROWS=(); RATIOS=(); NOTES=()
declare -A PEER_SW PEER_RE PEER_KIB

# prints and keeps one row
row() { # N system note
    local N=$1 sys=$2 note=$3 rssg kib percall
    rssg=$(awk -v a="${R_RSS1:-0}" -v b="${R_RSS0:-0}" 'BEGIN{printf "%.1f", (a-b)/1024}')
    kib=$(awk -v a="${R_RSS1:-0}" -v b="${R_RSS0:-0}" -v n="$N" 'BEGIN{printf "%.0f", (a-b)/n}')
    percall=$(awk -v p="$R_SW" -v n="$N" 'BEGIN{printf "%.3f", p/n}')
    local r="| $N | $sys | ${R_OK:-?} / ${R_FAIL:-?} · ${R_UFAIL:-?} | ${R_UP:-?} | $R_C1 | **$(pct "$R_C1" "$R_C2")** | $(pct "$R_C2" "$R_C3") | **$(pct "$R_C3" "$R_C4")** | $(pct "$R_C1" "$R_C4") | $R_MEDIA | ${R_SIGTXT:-$R_SIG} | **$R_SW** | $R_KERN | $percall | $R_UAC / $R_UASC | $R_BUSY / $R_OTHER | $R_LOAD | $(awk -v k="${R_RSS0:-0}" 'BEGIN{printf "%.0f", k/1024}') → $(awk -v k="${R_RSS1:-0}" 'BEGIN{printf "%.0f", k/1024}') (+$rssg) | **$kib** | ${R_WAVS:--} | $note |"
    ROWS+=("$r")
    echo "$r"
    KIB=$kib
}

# ------------------------------------------------------------ the steps
counters_setup
git_rev=${HOTLINE_REV:-$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')}
HEADER="| N | system | UAC ok / failed · UAS failed | calls up | RTP in from UAC | **switch loss UAC→UAS %** | SIPp UAS echo drop % | **switch loss UAS→UAC %** | end-to-end loss % (SIPp's drops included) | media process CPU % | signalling process CPU % | **switch CPU % of one core** | of which in the kernel (stime) % | % per call | SIPp UAC / UAS CPU % | machine busy % of 200 / other jobs % of one core | load avg (1 min) before | media process RSS MiB (growth) | **KiB per call** | WAVs | note |"
SEP="|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
echo "$HEADER"; echo "$SEP"

for N in $STEPS; do
    if [[ -n $QUIET_LOAD ]]; then
        for _ in $(seq 1 $((QUIET_WAIT_S / 5))); do
            awk -v q="$QUIET_LOAD" '{exit !($1 < q)}' /proc/loadavg && break
            sleep 5
        done
        log "step $N: load average $(cut -d' ' -f1-3 /proc/loadavg) (QUIET_LOAD=$QUIET_LOAD)"
    fi
    for sys in $SYSTEMS; do
        d=$WORK/step_${N}_$sys; mkdir -p "$d"
        R_WAVS=; R_SIGTXT=
        case $sys in
        peer)
            HOTLINE_PID=
            log "step $N: peer (Kamailio + rtpengine), ramp $RAMP_S s, hold $HOLD_MS ms"
            if ! start_peer "$d"; then
                NOTES+=("$N peer: did not start (see $d)"); stop_pid "$SIG_PID" 3; stop_pid "$MEDIA_PID" 3; continue
            fi
            drive "$N" "$d" "$PEER_IP:5080" 12345
            rtpengine-ctl -ip "$PEER_IP" -port 9900 list totals > "$d/rtpengine_totals.txt" 2>&1
            row "$N" "Kamailio + rtpengine (relay)" "rc=$R_RC, window ${R_WIN} s"
            PEER_SW[$N]=$R_SW; PEER_RE[$N]=$R_MEDIA; PEER_KIB[$N]=$KIB
            stop_pid "$SIG_PID" 5; stop_pid "$MEDIA_PID" 5
            ;;
        hotline)
            log "step $N: hotline ($HOTLINE_BIN), ramp $RAMP_S s, hold $HOLD_MS ms"
            if ! start_hotline "$d"; then
                NOTES+=("$N hotline: did not start or the agent did not register (see $d)")
                [[ -n $HOTLINE_PID ]] && stop_pid "$HOTLINE_PID" 8; HOTLINE_PID=; continue
            fi
            R_SIGTXT="(in hotline)"
            drive "$N" "$d" "$HOT_IP:5060" "$DID"
            for _ in $(seq 1 100); do [[ $(hotline_active) == 0 ]] && break; sleep 0.1; done
            left=$(hotline_active)
            stop_pid "$HOTLINE_PID" 8
            ext=wav; [[ $RECORDING_FORMAT == opus ]] && ext=opus
            wavs=$(find "$d/var" -name "*.$ext" 2>/dev/null | wc -l)
            parts=$(find "$d/var" -name "*.$ext.part" 2>/dev/null | wc -l)
            chk=""
            f=$(find "$d/var" -name "*.$ext" 2>/dev/null | sort | head -1)
            if [[ -n $f && $ext == wav ]] && command -v soxi >/dev/null; then
                chk=", first: $(soxi -c "$f") ch $(soxi -D "$f" | cut -d. -f1) s"
            fi
            R_WAVS="$wavs$( ((parts)) && echo " (+$parts .part)")$chk"
            ((KEEP_WAVS)) || rm -rf "$d/var/recordings"
            row "$N" "hotline $git_rev (B2BUA + $([[ $RECORDING == 1 ]] && echo "stereo $RECORDING_FORMAT recording" || echo "NO recording") + events)" \
                "rc=$R_RC, window ${R_WIN} s, calls left after: ${left:-?}, log: $(grep -c ' ERROR ' "$d/hotline.log") ERROR / $(grep -c ' WARN ' "$d/hotline.log") WARN"
            HOTLINE_PID=
            if [[ -n ${PEER_SW[$N]:-} ]]; then
                RATIOS+=("| $N | $(awk -v h="$R_SW" -v p="${PEER_RE[$N]}" 'BEGIN{ if (p>0) printf "%.2f×", h/p; else print "-"}') | $(awk -v h="$R_SW" -v p="${PEER_SW[$N]}" 'BEGIN{ if (p>0) printf "%.2f×", h/p; else print "-"}') | $(awk -v h="$KIB" -v p="${PEER_KIB[$N]}" 'BEGIN{ if (p>0) printf "%.1f×", h/p; else print "- (peer +" p " KiB)"}') |")
            fi
            ;;
        *) die "unknown system $sys" ;;
        esac
        sleep 5   # let timewait, deletes and the kernel settle before the next run
    done
done

# ------------------------------------------------------------ report
{
    echo "## hotline side by side with Kamailio + rtpengine (bench/load/peer_twin.sh, $(date -u '+%Y-%m-%d %H:%M UTC'))"
    echo
    echo "Command: \`${QUIET_LOAD:+QUIET_LOAD=$QUIET_LOAD QUIET_WAIT_S=$QUIET_WAIT_S }HOLD_MS=$HOLD_MS RAMP_S=$RAMP_S RECORDING=$RECORDING RECORDING_FORMAT=$RECORDING_FORMAT SYSTEMS=\"$SYSTEMS\" ${RMEM_DEFAULT:+RMEM_DEFAULT=$RMEM_DEFAULT }HOTLINE_BIN=$HOTLINE_BIN${HOTLINE_REV:+ HOTLINE_REV=$HOTLINE_REV} bench/load/peer_twin.sh $STEPS\`"
    echo
    echo "hotline $git_rev, release binary \`$HOTLINE_BIN\`, \`--log $LOG_LEVEL\`; $(kamailio -v 2>/dev/null | awk 'NR==1{print $2, $3}'); rtpengine $(dpkg-query -W -f '${Version}' rtpengine-daemon 2>/dev/null) (userspace, 2 threads); SIPp $(dpkg-query -W -f '${Version}' sip-tester 2>/dev/null); $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')); load average before the run: $LOADAVG0; net.core.rmem_default $(sysctl -n net.core.rmem_default)."
    echo
    echo "$HEADER"; echo "$SEP"
    printf '%s\n' "${ROWS[@]}"
    if ((${#RATIOS[@]})); then
        echo
        echo "| N | hotline CPU / rtpengine CPU | hotline CPU / (rtpengine + Kamailio) CPU | hotline KiB per call / rtpengine's |"
        echo "|---:|---:|---:|---:|"
        printf '%s\n' "${RATIOS[@]}"
    fi
    if ((${#NOTES[@]})); then echo; printf -- '- %s\n' "${NOTES[@]}"; fi
    echo
    echo "Load (the same for both): SIPp UAC \`bench/load/peer/sipp/uac_ivr_load.xml\` on $UAC (looped A-law speech via rtp_stream, one RFC 4733 key at 2 s via play_pcap_audio) → switch → SIPp UAS \`uas_agent.xml -rtp_echo\` on $UAS:5070; N calls started over $RAMP_S s, each held $HOLD_MS ms. Peer: Kamailio on $PEER_IP:5080 + rtpengine (relay only). hotline: $HOT_IP:5060, DID $DID rings agent $AGENT (the UAS, registered first with \`register_agent.xml\`), recording $([[ $RECORDING == 1 ]] && echo on || echo off). Each system is started fresh for each step."
    echo
    echo "Columns: CPU = utime+stime from /proc over the window where all N calls are up (ramp + 3 s to 3 s before the first BYE), in % of ONE core (and the part of it in the kernel, stime alone); switch = rtpengine + Kamailio (and its children) for the peer, the hotline process for hotline; calls up = rtpengine sessions / hotline's \`/healthz\` calls.active at the window's start. Loss = iptables INPUT counters on lo (packets to and from the two SIPp RTP ports): switch loss UAC→UAS = in from the UAC but not out to the UAS, UAS→UAC = echoed by the UAS but not out to the UAC (these two are the switch's); SIPp UAS echo drop = reached the UAS but not echoed (SIPp's single echo socket overflowing: the load generator's loss, not the switch's); end-to-end = sent by the UAC but never back to it (all three). ok / failed = SIPp UAC successful / failed calls; UAS failed = calls the agent's SIPp aborted (it aborts on an INVITE retransmission while it waits for the ACK). RSS = VmRSS of the media process (rtpengine / hotline) before the first call (hotline: agent registered) and at the window's end; KiB per call = growth / N. Machine busy = whole machine over the window (% of all cores); other jobs = busy CPU not used by the switch or SIPp, in % of one core (other work on this shared machine)."
} > "$WORK/report.md"
echo
cat "$WORK/report.md"
cp "$WORK/report.md" "$OUT"
log "written $OUT (total $(( $(date +%s) - T_START )) s)"
