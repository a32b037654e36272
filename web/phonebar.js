// 电话条 Phone bar: an agent's state, call control, screen pop and messages,
// on the public API (docs/api.md, src/api/cti.rs) and the live WebSocket
// (src/api/live.rs).
//
// Stable element ids (tests/browser.rs drives the page by these):
//   #login-form, #login-user, #login-pass, #login-btn, #login-error
//   #who (logged-in user), #ws-status[data-connected="true|false"], #btn-logout
//   #bar (the phone bar, hidden until logged in), #error (last API error)
//   #state[data-state="<agent state>|unknown"], #state-reason, #state-time
//   #btn-signin 签入, #btn-signout 签出, #btn-ready 示闲,
//   #notready-reason (break|training|ticket) + #btn-notready 示忙,
//   #btn-acw-done 话后完成
//   #call-status[data-call-id], #btn-hangup 挂断, #btn-hold 保持, #btn-resume 恢复
//   #transfer-agent | #transfer-group | #transfer-number + #btn-transfer 转接
//   #consult-agent | #consult-group | #consult-number + #btn-consult 咨询 (a group's
//   agent is picked by its queue), #btn-consult-complete,
//   #btn-consult-cancel, #btn-conference-add 三方, #btn-conference-drop,
//   #btn-survey 转满意度, #dial-number + #btn-dial 外呼
//   #quick-transfers button.quick-transfer[data-number] (one-click targets)
//   #screen-pop[data-call-id], #caller, #caller-area, #called, #ivr-path,
//   #ivr-vars, #wait, #history tbody tr (td: time, agent, outcome, recording)
//   #call-log li (the current call's events), #messages li,
//   #msg-to, #msg-text, #btn-send
//   the browser phone's (#phone-…, #btn-answer 接听 …): web/webphone.js
//
// The agent's state is shown from the WebSocket's `hello` (the state now)
// and then its `agent.state` events of this agent.

import { Session, connectEvents, STATES, REASONS, OUTCOMES, label, h, duration, localTime, showError } from "./api.js";
import { WebPhone } from "./webphone.js";

const $ = (sel) => document.querySelector(sel);
const session = new Session("phonebar");
let live = null;
let me = null;
let stateSince = null;
let currentCall = null;
/** The browser phone (web/webphone.js): this page answers calls itself. */
const phone = new WebPhone((m) => live !== null && live.send(m));

// ----- login ---------------------------------------------------------------

$("#login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  showError($("#login-error"), null);
  $("#login-btn").disabled = true;
  try {
    const user = await session.login($("#login-user").value.trim(), $("#login-pass").value);
    if (!user.agent_id) {
      await session.logout();
      throw new Error(`用户 ${user.user} 不是坐席 (no agent_id): 请用坐席账号登录 log in as an agent`);
    }
    $("#login-pass").value = "";
    start(user);
  } catch (err) {
    showError($("#login-error"), err);
  } finally {
    $("#login-btn").disabled = false;
  }
});

$("#btn-logout").addEventListener("click", async () => {
  await session.logout();
  stop();
});

session.onExpired = () => {
  stop();
  showError($("#login-error"), new Error("登录已过期，请重新登录 Session expired: log in again"));
};

function start(user) {
  me = user;
  $("#who").textContent = `${user.display_name || user.user} · 工号 ${user.agent_id}`;
  $("#login-form").classList.add("hidden");
  $("#bar").classList.remove("hidden");
  $("#btn-logout").classList.remove("hidden");
  live = connectEvents(session, onEvent, (up) => {
    $("#ws-status").dataset.connected = String(up);
    if (up) phone.online(); else phone.offline();
  });
  loadTransferTargets();
}

function stop() {
  phone.disable();
  if (live) live.close();
  live = null;
  me = null;
  $("#ws-status").dataset.connected = "false";
  $("#who").textContent = "";
  $("#bar").classList.add("hidden");
  $("#btn-logout").classList.add("hidden");
  $("#login-form").classList.remove("hidden");
}

// ----- actions -------------------------------------------------------------

/** Run an API action from a button; show its error. */
function action(id, run) {
  $(id).addEventListener("click", async () => {
    const btn = $(id);
    showError($("#error"), null);
    btn.disabled = true;
    try {
      await run();
    } catch (err) {
      showError($("#error"), err);
    } finally {
      btn.disabled = false;
    }
  });
}

action("#btn-signin", () => session.post("/api/v1/agent/state", { state: "logged_in" }));
action("#btn-signout", () => session.post("/api/v1/agent/state", { state: "logged_out" }));
action("#btn-ready", () => session.post("/api/v1/agent/state", { state: "ready" }));
action("#btn-notready", () =>
  session.post("/api/v1/agent/state", { state: "not_ready", reason: $("#notready-reason").value }));
action("#btn-acw-done", () => session.post("/api/v1/agent/acw/complete"));
action("#btn-hangup", () => session.post("/api/v1/agent/call/hangup"));
action("#btn-hold", () => session.post("/api/v1/agent/call/hold"));
action("#btn-resume", () => session.post("/api/v1/agent/call/resume"));

action("#btn-transfer", async () => {
  const fields = [["to_agent", "#transfer-agent"], ["to_group", "#transfer-group"], ["to_number", "#transfer-number"]]
    .map(([key, sel]) => [key, $(sel).value.trim()])
    .filter(([, v]) => v);
  if (fields.length !== 1) {
    throw new Error("请只填写一项：坐席工号、技能组或号码 Fill exactly one of agent id, group, number");
  }
  await transfer(Object.fromEntries(fields));
  for (const sel of ["#transfer-agent", "#transfer-group", "#transfer-number"]) $(sel).value = "";
});

/// The one target of the consult / three-way fields (a skill group:
/// consultations only).
function partyTarget(group) {
  const fields = [["to_agent", "#consult-agent"], ["to_group", "#consult-group"], ["to_number", "#consult-number"]]
    .map(([key, sel]) => [key, $(sel).value.trim()])
    .filter(([, v]) => v);
  if (!group && fields.some(([key]) => key === "to_group")) {
    throw new Error("三方通话不能选技能组 A three-way call takes an agent id or a number");
  }
  if (fields.length !== 1) {
    throw new Error("请只填写一项：坐席工号、技能组或号码 Fill exactly one of agent id, group, number");
  }
  return Object.fromEntries(fields);
}
let party = null;
action("#btn-consult", async () => {
  const body = partyTarget(true);
  await session.post("/api/v1/agent/call/consult", body);
  party = body.to_agent || body.to_number || null;
  logLine(body.to_group
    ? `咨询技能组 ${body.to_group} 排队中 consulting group ${body.to_group}: queued (来电保持 caller on hold)`
    : `咨询中 consulting ${party} (来电保持 caller on hold)`);
});
action("#btn-consult-complete", async () => {
  await session.post("/api/v1/agent/call/consult/complete");
  logLine(`咨询转接完成 attended transfer to ${party || $("#consult-group").value.trim() || "?"}`);
});
action("#btn-consult-cancel", async () => {
  await session.post("/api/v1/agent/call/consult/cancel");
  logLine("咨询取消 consultation cancelled");
});
action("#btn-conference-add", async () => {
  const body = partyTarget(false);
  await session.post("/api/v1/agent/call/conference/add", body);
  party = body.to_agent || body.to_number;
  logLine(`三方呼叫中 adding ${party}`);
});
action("#btn-conference-drop", async () => {
  if (!party) throw new Error("没有第三方 no third party");
  await session.post("/api/v1/agent/call/conference/drop", { party });
  logLine(`已拆除 dropped ${party}`);
});
action("#btn-survey", async () => {
  await session.post("/api/v1/agent/call/survey");
  logLine("已转满意度评价 caller sent to the survey");
});
action("#btn-dial", async () => {
  const number = $("#dial-number").value.trim();
  const r = await session.post("/api/v1/agent/call/dial", { number });
  logLine(`外呼 dialling ${number} (${r.call_id})`);
});

async function transfer(body) {
  await session.post("/api/v1/agent/call/transfer", body);
  logLine(`转接中 transferring → ${body.to_agent || body.to_group || body.to_number}`);
}

async function loadTransferTargets() {
  const box = $("#quick-transfers");
  box.replaceChildren();
  try {
    const r = await session.get("/api/v1/agent/transfer-targets");
    for (const t of r.targets || []) {
      box.append(h("button", {
        type: "button",
        class: "secondary quick-transfer",
        dataset: { number: t.number },
        "aria-label": `转接到 ${t.label} transfer to ${t.number}`,
        onclick: async (e) => {
          showError($("#error"), null);
          e.currentTarget.disabled = true;
          try { await transfer({ to_number: t.number }); } catch (err) { showError($("#error"), err); }
          finally { e.currentTarget.disabled = false; }
        },
      }, t.label));
    }
  } catch (err) {
    showError($("#error"), err);
  }
}

action("#btn-send", async () => {
  const to = $("#msg-to").value.trim();
  const text = $("#msg-text").value;
  if (!to || !text.trim()) throw new Error("请填写坐席工号和内容 Give an agent id and a text");
  await session.post("/api/v1/messages", { to_agent: to, text });
  $("#messages").append(h("li", { class: "sent" }, `${hhmmss()} → ${to}: ${text}`));
  $("#msg-text").value = "";
});

// ----- live events -----------------------------------------------------------

const EVENT_LABELS = {
  "agent.offered": "振铃 offered",
  "agent.answered": "应答 answered",
  "call.held": "保持 held",
  "call.resumed": "恢复 resumed",
  "call.transferred": "转接 transferred",
  "conference.changed": "三方 conference",
  "recording.ready": "录音完成 recording ready",
  "survey.result": "满意度 survey",
  "call.ended": "结束 ended",
};

function onEvent(m) {
  if (!me) return;
  if (phone.onMessage(m)) return;
  switch (m.type) {
    case "hello":
      if (m.agent_state && m.agent_state.state) {
        const since = new Date(Date.now() - 1000 * (Number(m.agent_state.in_state_secs) || 0));
        showState(m.agent_state, since.toISOString());
      }
      return;
    case "agent.state":
      if (m.data.agent_id === me.agent_id) showState(m.data, m.at);
      return;
    case "screen_pop":
      if (m.agent_id === me.agent_id) screenPop(m);
      return;
    case "message":
      $("#messages").append(h("li", { class: "received" },
        `${hhmmss(m.at)} ${m.from_user}${m.from_agent ? ` (${m.from_agent})` : ""}: ${m.text}`));
      return;
    case "lagged":
      logLine(`漏收 ${m.skipped} 条事件 missed ${m.skipped} events`);
      return;
    default:
      if (m.call_id && EVENT_LABELS[m.type]) callEvent(m);
  }
}

function showState(d, at) {
  phone.agentState(d.state);
  const el = $("#state");
  el.dataset.state = d.state;
  el.replaceChildren(label(STATES[d.state], d.state));
  $("#state-reason").replaceChildren(d.reason ? label(REASONS[d.reason], d.reason) : "");
  stateSince = at ? new Date(at).getTime() : Date.now();
  tick();
}

function tick() {
  $("#state-time").textContent = stateSince === null ? "" : duration(Date.now() - stateSince);
}
setInterval(tick, 1000);

function callEvent(m) {
  if (m.type === "agent.offered" && m.data.agent_id === me.agent_id && m.call_id !== currentCall) {
    currentCall = m.call_id;
    $("#call-log").replaceChildren();
  }
  const d = m.data || {};
  let detail = "";
  if (m.type === "agent.offered" || m.type === "agent.answered") detail = d.agent_id;
  if (m.type === "call.transferred") detail = `${d.from_agent || "IVR"} → ${d.target} (${d.mode})`;
  if (m.type === "call.ended") detail = OUTCOMES[d.outcome] || d.outcome || "";
  logLine(`${EVENT_LABELS[m.type]} ${detail || ""}`, m.at);
  const status = $("#call-status");
  const mine = d.agent_id === me.agent_id;
  let text = null;
  if (m.type === "agent.offered" && mine) text = ["振铃", "ringing"];
  if (m.type === "agent.answered" && mine) text = ["通话中", "talking"];
  if (m.type === "call.transferred" && d.from_agent === me.agent_id) text = ["已转出", "transferred away"];
  if (m.type === "call.ended" && m.call_id === currentCall) {
    currentCall = null;
    delete status.dataset.callId;
    text = ["无通话", "no call"];
  } else if (text) {
    status.dataset.callId = m.call_id;
  }
  if (text) status.replaceChildren(label(text));
}

function screenPop(p) {
  $("#screen-pop").dataset.callId = p.call_id;
  $("#caller").textContent = p.caller || "—";
  const area = p.caller_area;
  $("#caller-area").textContent = area ? `${area.region || ""} ${area.code || ""}`.trim() : "—";
  $("#called").textContent = p.called || "—";
  $("#ivr-path").textContent = p.ivr_path && p.ivr_path.length ? p.ivr_path.join(" → ") : "—";
  const vars = Object.entries(p.ivr_vars || {});
  $("#ivr-vars").textContent = vars.length ? vars.map(([k, v]) => `${k}=${v}`).join(", ") : "—";
  $("#wait").textContent = duration(p.wait_ms);
  const rows = (p.history || []).map((c) => h("tr", { dataset: { callId: c.call_id } },
    h("td", {}, localTime(c.started_at)),
    h("td", {}, c.agent_id || "—"),
    h("td", {}, OUTCOMES[c.outcome] || c.outcome || "—"),
    h("td", {}, c.recording_id || "—")));
  if (!rows.length) rows.push(h("tr", { class: "empty" }, h("td", { colspan: 4 }, "无历史来电 no previous calls")));
  $("#history tbody").replaceChildren(...rows);
}

function logLine(text, at) {
  const log = $("#call-log");
  log.append(h("li", {}, `${hhmmss(at)} ${text}`));
  while (log.children.length > 50) log.firstChild.remove();
  log.scrollTop = log.scrollHeight;
}

function hhmmss(at) {
  return localTime(at || new Date().toISOString()).slice(11);
}

// ----- start -----------------------------------------------------------------

(async () => {
  if (!session.token) return;
  try {
    const r = await session.get("/api/v1/me");
    start(r.user);
  } catch {
    session.clear();
  }
})();
