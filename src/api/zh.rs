//! Chinese text for the API's error codes (issue 12 item 8: "API/ACD error
//! messages shown to agents have Chinese text"; REQUIREMENTS: the agents'
//! and supervisors' screens are in Chinese).
//!
//! Every JSON error carries `message_zh` next to the stable machine `code`
//! and the English `message` (which names the detail: the agent, the state,
//! the parameter). The phone bar and the wall-board show the Chinese text
//! first. A code without its own text falls back to one for its HTTP
//! status class, so an answer never lacks Chinese.

/// The Chinese message for error `code` answered with HTTP `status`.
pub fn message_zh(code: &str, status: u16) -> &'static str {
    match code {
        "bad_request" => "请求有误，请检查填写的内容",
        "bad_json" => "请求内容不是有效的 JSON",
        "bad_query" => "查询参数有误",
        "bad_number" => "号码格式有误：只能是数字，可带开头的 +，号段以 * 结尾",
        "bad_range" => "请求的范围无效",
        "unauthorized" => "未登录、用户名或密码错误，请重新登录",
        "token_expired" => "登录已过期，请重新登录",
        "locked" => "登录失败次数过多，请稍后再试",
        "forbidden" => "没有权限执行此操作",
        "not_found" => "找不到请求的内容",
        "conflict" => "与现有数据冲突",
        "taken" => "该工号或分机号已被占用",
        "in_use" => "正在使用中，暂不能修改或删除",
        "invalid" => "修改后的配置无效，未做任何更改",
        "invalid_config" => "配置文件有误，未做任何更改",
        "invalid_flows" => "IVR 流程文件有误，继续使用原有流程",
        "unknown_flow" => "IVR 流程不存在，或还没有保存的版本",
        "unknown_version" => "该 IVR 流程没有这个历史版本",
        "ambiguous_version" => "版本号前缀对应多个版本，请写出更多位",
        "nothing_to_compare" => "该 IVR 流程只有一个版本，没有可比较的版本",
        "already_live" => "该版本已是流程文件当前的版本，无需回退",
        "weak_password" => "话机密码太短，至少 8 个字符",
        "unavailable" => "该功能当前不可用",
        "internal" => "系统内部错误，请联系管理员",
        "wrong_state" => "坐席当前状态不能执行此操作",
        "no_call" => "当前没有通话",
        "no_acd" => "未配置技能组，排队功能未启用",
        "no_groups" => "未配置技能组",
        "acd_unavailable" => "排队系统（ACD）未运行",
        "records_unavailable" => "通话记录暂时无法读取，无法做话务预测",
        "unknown_group" => "技能组不存在",
        "no_campaigns" => "回访任务功能未启用（需配置技能组，且为单节点部署）",
        "unknown_campaign" => "回访任务不存在",
        "unknown_schedule" => "呼叫时段（工作时间表）不存在",
        "bad_redial" => "重拨设置有误：次数 1 到 10 次，间隔不超过一天",
        "bad_ticket" => "工单号不能为空，且不超过 128 个字符",
        "too_many_items" => "一个回访任务最多 10000 条号码",
        "campaign_cancelled" => "回访任务已取消，不能再添加号码",
        "no_phone" => "该用户没有绑定话机（工号）",
        "busy" => "坐席正在通话中",
        "no_trunk" => "未配置外呼中继线路",
        "not_registered" => "话机未注册，请检查话机",
        "cannot_supervise" => "不能对该通话监听、耳语或强插",
        "cannot_add" => "不能加入第三方（三方通话）",
        "cannot_consult" => "不能发起咨询转接",
        "no_audio_fork" => "该通话没有实时音频转发（租户未配置 audio_fork）",
        "no_survey" => "该通话没有满意度评价流程",
        "transfer_unavailable" => "外呼和回拨通话不能盲转，请先咨询目标再完成转接",
        "too_large" => "请求内容过大",
        "method_not_allowed" => "不支持该请求方法",
        "unsupported_media_type" => "不支持该请求内容类型",
        _ => by_status(status),
    }
}

/// Fallback by HTTP status.
fn by_status(status: u16) -> &'static str {
    match status {
        401 => "未登录、用户名或密码错误，请重新登录",
        403 => "没有权限执行此操作",
        404 => "找不到请求的内容",
        409 => "与当前状态冲突，操作未执行",
        413 => "请求内容过大",
        429 => "请求过于频繁，请稍后再试",
        500..=599 => "系统暂时无法处理，请稍后再试或联系管理员",
        _ => "请求有误",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first string literal in `rest` if only whitespace (and with
    /// `idents`, identifiers and `,`) comes before it, and it looks like a
    /// code.
    fn literal_after(rest: &str, idents: bool) -> Option<&str> {
        let open = rest.find('"')?;
        let before = &rest[..open];
        let allowed = |c: char| {
            c.is_whitespace() || (idents && (c.is_ascii_alphanumeric() || matches!(c, '_' | ',')))
        };
        if !before.chars().all(allowed) {
            return None;
        }
        let lit = &rest[open + 1..];
        let code = &lit[..lit.find('"')?];
        (!code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
            .then_some(code)
    }

    /// Error codes written in the sources: the string literal right after
    /// `conflict(`, `bad_request(`, `StatusCode::…,`, `error_object(` and
    /// `"code":` in the
    /// API's files, and the arms of `json_errors::code_for` and
    /// `AuthError::code`.
    fn codes_in_sources() -> Vec<String> {
        let api = [
            include_str!("admin.rs"),
            include_str!("blocklist.rs"),
            include_str!("cti/mod.rs"),
            include_str!("cti/agent_state.rs"),
            include_str!("cti/call_control.rs"),
            include_str!("cti/transfer.rs"),
            include_str!("cti/supervision.rs"),
            include_str!("cti/messages.rs"),
            include_str!("cti/acd.rs"),
            include_str!("cti/campaigns.rs"),
            include_str!("error.rs"),
            include_str!("flows.rs"),
            include_str!("live.rs"),
            include_str!("records.rs"),
            include_str!("roster.rs"),
            include_str!("session.rs"),
            include_str!("listener.rs"),
        ];
        let mut out = Vec::new();
        let mut scan = |text: &str, markers: &[&str]| {
            for marker in markers {
                let idents = *marker == "StatusCode::";
                for (i, _) in text.match_indices(marker) {
                    if let Some(code) = literal_after(&text[i + marker.len()..], idents) {
                        out.push(code.to_string());
                    }
                }
            }
        };
        for text in api {
            scan(
                text,
                &[
                    "conflict(",
                    "bad_request(",
                    "StatusCode::",
                    "\"code\":",
                    "error_object(",
                ],
            );
        }
        // The codes of answers made outside the handlers.
        let outside = include_str!("json_errors.rs");
        let code_for = &outside[outside.find("fn code_for(").unwrap_or(0)..];
        scan(&code_for[..code_for.find("\n}\n").unwrap_or(0)], &["=>"]);
        let auth = include_str!("../auth/error.rs");
        let code_fn = &auth[auth.find("fn code(").unwrap_or(0)..];
        scan(&code_fn[..code_fn.find("\n    }\n").unwrap_or(0)], &["=>"]);
        out.sort();
        out.dedup();
        out
    }

    #[test]
    fn every_code_in_the_sources_has_its_own_chinese_text() {
        let codes = codes_in_sources();
        for must in [
            "wrong_state",
            "no_call",
            "too_large",
            "bad_number",
            "unauthorized",
            "token_expired",
            "acd_unavailable",
            "invalid_flows",
            "method_not_allowed",
            "locked",
        ] {
            assert!(codes.iter().any(|c| c == must), "{must} found: {codes:?}");
        }
        // 499 has no status text of its own: only the catch-all answers it.
        for code in &codes {
            assert_ne!(
                message_zh(code, 499),
                by_status(499),
                "{code:?} has no Chinese text of its own"
            );
        }
    }

    #[test]
    fn unknown_codes_fall_back_by_status() {
        assert_eq!(
            message_zh("something_new", 409),
            "与当前状态冲突，操作未执行"
        );
        assert_eq!(message_zh("something_new", 503), by_status(500));
        assert_eq!(message_zh("wrong_state", 409), "坐席当前状态不能执行此操作");
    }
}
