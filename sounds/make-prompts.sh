#!/usr/bin/env bash
# Regenerates hotline's Mandarin prompts and music on hold from text, so the
# committed audio can always be reproduced (Debian: espeak-ng, sox).
# Output: 8 kHz mono A-law WAV (G.711's own format; small, decoded at load).
# sox -R: repeatable dither, so a rerun writes the same bytes.
set -euo pipefail
cd "$(dirname "$0")"
say() { # say NAME TEXT
    espeak-ng -v cmn -s 175 -w "/tmp/hotline-$1.wav" "$2"
    # Trim leading/trailing silence so menus move briskly and the pieces
    # of an announcement follow each other without gaps.
    sox -R "/tmp/hotline-$1.wav" -r 8000 -c 1 -e a-law "$1.wav" \
        silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse norm -3
    rm -f "/tmp/hotline-$1.wav"
}
say queue_welcome "您好，欢迎致电一二三四五政务服务便民热线。话务员正忙，请稍候。"
# Position and estimated wait, composed by media::announcement:
#   您是下一位 | 您前面还有 <number> 位来电者 ; 预计等待 <number> 分钟 | 预计等待不到一分钟
say queue_next "您是下一位来电者。"
say queue_ahead "您前面还有"
say queue_ahead_unit "位来电者。"
say queue_wait "预计等待"
say queue_minutes "分钟。"
say queue_wait_short "预计等待不到一分钟。"
# Numbers are read from these pieces (十五, 一百零五, 两千三百 …).
digits=(零 一 二 三 四 五 六 七 八 九)
for n in 0 1 2 3 4 5 6 7 8 9; do
    say "num_$n" "${digits[$n]}"
done
say num_liang "两"
say num_10 "十"
say num_100 "百"
say num_1000 "千"
say num_10000 "万"
# The rest of the pieces the IVR's say node reads figures from (ivr::say):
# 亿, 点, 负, money (元角分) and dates (年月日).
say num_100000000 "亿"
say num_point "点"
say num_minus "负"
say num_yuan "元"
say num_jiao "角"
say num_fen "分"
say num_year "年"
say num_month "月"
say num_day "日"
say queue_callback_offer "如需我们回电，请按一。"
say queue_callback_confirmed "我们将尽快给您回电，再见。"
say queue_sorry "对不起，现在无法接通，我们会给您回电，再见。"
# IVR flows (ivr-flows/*.toml).
say ivr_12345_welcome "您好，欢迎致电一二三四五政务服务便民热线。"
say ivr_12345_menu "政策咨询请按一，投诉举报请按二，企业服务专线请按三，紧急求助请按九，人工服务请按零。"
say ivr_invalid "您的输入有误。"
say ivr_no_input "您没有输入。"
say ivr_blocked "对不起，您的号码已被限制呼入，再见。"
say ivr_after_hours "现在是非工作时间，人工服务时间为每天早上八点到晚上八点。"
say ivr_voicemail "请在提示音后留言，留言完毕请挂机或按井号键。"
say ivr_goodbye "感谢您的来电，再见。"
# Ticket progress lookup (http and say nodes, docs/ivr.md).
say ivr_ticket_number "请输入您的工单号，以井号键结束。"
say ivr_lookup_wait "正在为您查询，请稍候。"
say ivr_ticket_is "您的工单"
say ivr_ticket_in_progress "正在办理中。"
say ivr_ticket_due "预计办结日期为"
say ivr_ticket_unknown "没有查到这个工单，请核对工单号。"
say ivr_lookup_unavailable "查询系统暂时无法使用，请稍后再试。"
say ivr_12328_welcome "您好，这里是一二三二八交通运输服务监督热线。"
say ivr_12328_closed "现在是非工作时间，工作时间为工作日上午八点半至十二点，下午一点半至五点半。"
say survey_intro "请对本次服务进行评价。"
say survey_attitude "对服务态度，满意请按一，一般请按二，不满意请按三。"
say survey_efficiency "对办理效率，满意请按一，一般请按二，不满意请按三。"
say survey_resolution "对问题解决情况，满意请按一，一般请按二，不满意请按三。"
say survey_thanks "感谢您的评价，再见。"
# Music on hold: a slow pentatonic arpeggio, 8 s, looped by the player.
notes=(523.25 587.33 659.25 783.99 880.00 783.99 659.25 587.33)
parts=()
for i in "${!notes[@]}"; do
    sox -R -n -r 8000 -c 1 "/tmp/hotline-moh-$i.wav" synth 1 sine "${notes[$i]}" fade q 0.05 1 0.3 vol 0.3
    parts+=("/tmp/hotline-moh-$i.wav")
done
sox -R "${parts[@]}" -e a-law moh.wav
rm -f "${parts[@]}"
echo "prompts written to $(pwd)"
