#!/usr/bin/env bash
# Regenerates hotline's Mandarin prompts and music on hold from text, so the
# committed audio can always be reproduced (Debian: espeak-ng, sox).
# Output: 8 kHz mono A-law WAV (G.711's own format; small, decoded at load).
set -euo pipefail
cd "$(dirname "$0")"
say() { # say NAME TEXT
    espeak-ng -v cmn -s 150 -w "/tmp/hotline-$1.wav" "$2"
    sox "/tmp/hotline-$1.wav" -r 8000 -c 1 -e a-law "$1.wav" norm -3
    rm -f "/tmp/hotline-$1.wav"
}
say queue_welcome "您好，欢迎致电一二三四五政务服务便民热线。话务员正忙，请稍候。"
digits=(零 一 二 三 四 五 六 七 八 九)
for n in 1 2 3 4 5 6 7 8 9; do
    say "queue_position_$n" "您前面还有${digits[$n]}位来电者。"
done
say queue_position_many "您前面还有多位来电者，请耐心等待。"
say queue_callback_offer "如需我们回电，请按一。"
say queue_callback_confirmed "我们将尽快给您回电，再见。"
say queue_sorry "对不起，现在无法接通，我们会给您回电，再见。"
# Music on hold: a slow pentatonic arpeggio, 8 s, looped by the player.
notes=(523.25 587.33 659.25 783.99 880.00 783.99 659.25 587.33)
parts=()
for i in "${!notes[@]}"; do
    sox -n -r 8000 -c 1 "/tmp/hotline-moh-$i.wav" synth 1 sine "${notes[$i]}" fade q 0.05 1 0.3 vol 0.3
    parts+=("/tmp/hotline-moh-$i.wav")
done
sox "${parts[@]}" -e a-law moh.wav
rm -f "${parts[@]}"
echo "prompts written to $(pwd)"
