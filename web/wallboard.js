// 监控大屏 Wall-board: agents by state, queues and active calls of the
// supervisor's tenant, with listen / whisper / barge and force release.
// Polls GET /api/v1/wallboard and /api/v1/calls/active every 2 s and
// follows the live WebSocket (agent.state at once; other events refresh).
//
// Stable element ids (tests/browser.rs drives the page by these):
//   #login-form, #login-user, #login-pass, #login-btn, #login-error
//   #who, #ws-status[data-connected], #btn-logout, #updated (last refresh)
//   #board (hidden until logged in), #error (last API error), #notice
//   #agents > #agent-<agent id>[data-state="<shown state>"][data-acd-state]
//     .name, .state-text, .reason, .time (time in state, ticking),
//     .actions button.btn-listen 监听 | .btn-whisper 耳语 | .btn-barge 强插 |
//     .btn-release 强拆 (only while the agent is on a call)
//   #queues tbody tr[data-group] (group, waiting, longest wait, 20 s, 30 s, ASA)
//   #active-calls tbody tr[data-call-id]
//
// The shown state is the ACD's, except that an agent whose phone is on a
// call (`on_call`) is shown talking even if the ACD does not know it: a
// blind transfer to an agent rings their phone directly, outside the ACD.

import { Session, connectEvents, STATES, REASONS, label, h, duration, showError } from "./api.js";

const $ = (sel) => document.querySelector(sel);
const session = new Session("wallboard");
const ON_A_CALL = ["ringing", "talking", "on_hold", "outbound"];
let live = null;
let poller = null;
let refreshSoon = null;
/** agent id → {state, acd, since (ms), element} */
const agents = new Map();

// ----- login ---------------------------------------------------------------

$("#login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  showError($("#login-error"), null);
  $("#login-btn").disabled = true;
  try {
    const user = await session.login($("#login-user").value.trim(), $("#login-pass").value);
    if (user.role === "agent") {
      await session.logout();
      throw new Error("监控大屏需要班长或管理员账号 The wall-board needs a supervisor or admin");
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
  $("#who").textContent = `${user.display_name || user.user} · ${user.role} · ${user.tenant}`;
  $("#login-form").classList.add("hidden");
  $("#board").classList.remove("hidden");
  $("#btn-logout").classList.remove("hidden");
  live = connectEvents(session, onEvent, (up) => { $("#ws-status").dataset.connected = String(up); });
  refresh();
  poller = setInterval(refresh, 2000);
}

function stop() {
  if (live) live.close();
  live = null;
  clearInterval(poller);
  agents.clear();
  $("#agents").replaceChildren();
  $("#ws-status").dataset.connected = "false";
  $("#who").textContent = "";
  $("#board").classList.add("hidden");
  $("#btn-logout").classList.add("hidden");
  $("#login-form").classList.remove("hidden");
}

// ----- data ----------------------------------------------------------------

/** A duration from the API (seconds, or serde's {secs, nanos}) in ms. */
function ms(d) {
  if (d === null || d === undefined) return null;
  if (typeof d === "number") return d * 1000;
  return (d.secs || 0) * 1000 + Math.floor((d.nanos || 0) / 1e6);
}

function percent(rate) {
  return rate === null || rate === undefined ? "—" : `${(rate * 100).toFixed(1)}%`;
}

function startedMs(t) {
  return typeof t === "number" ? t : Date.parse(t);
}

let refreshing = false;
async function refresh() {
  if (refreshing || !session.token) return;
  refreshing = true;
  try {
    const [board, active] = await Promise.all([
      session.get("/api/v1/wallboard"),
      session.get("/api/v1/calls/active"),
    ]);
    showAgents(board.agents || []);
    showQueues(board.groups || []);
    showCalls(active.calls || []);
    $("#updated").textContent = `更新 ${new Date().toLocaleTimeString("zh-CN", { hour12: false })}`;
    if ($("#error").dataset.from === "poll") showError($("#error"), null);
  } catch (err) {
    showError($("#error"), err);
    $("#error").dataset.from = "poll";
  } finally {
    refreshing = false;
  }
}

function onEvent(m) {
  if (m.type === "agent.state") {
    const a = agents.get(m.data.agent_id);
    if (a) {
      a.acd = m.data.state;
      setState(a, m.data.state, m.data.reason, Date.parse(m.at) || Date.now());
    }
  }
  if (m.type !== "hello") {
    clearTimeout(refreshSoon);
    refreshSoon = setTimeout(refresh, 300);
  }
}

// ----- agents ----------------------------------------------------------------

function showAgents(list) {
  const now = Date.now();
  const seen = new Set();
  list.sort((a, b) => a.agent_id.localeCompare(b.agent_id));
  for (const row of list) {
    seen.add(row.agent_id);
    let a = agents.get(row.agent_id);
    if (!a) {
      a = tile(row);
      agents.set(row.agent_id, a);
    }
    $("#agents").append(a.element); // keeps the sort order
    a.acd = row.state;
    const shown = row.on_call && !ON_A_CALL.includes(row.state) ? "talking" : row.state;
    const since = shown === row.state ? now - (ms(row.in_state_secs) ?? 0) : (a.state === shown ? a.since : now);
    setState(a, shown, row.reason, since);
  }
  for (const [id, a] of agents) {
    if (!seen.has(id)) {
      a.element.remove();
      agents.delete(id);
    }
  }
}

function tile(row) {
  const id = row.agent_id;
  const name = row.name && row.name !== id ? `${row.name} ` : "";
  const sup = (mode, zh, en, cls) => h("button", {
    type: "button",
    class: cls || `btn-${mode}`,
    "aria-label": `${zh} ${en} ${id}`,
    onclick: () => supervise(id, mode, zh),
  }, zh);
  const actions = h("div", { class: "actions hidden" },
    sup("listen", "监听", "listen"),
    sup("whisper", "耳语", "whisper"),
    sup("barge", "强插", "barge in"),
    h("button", {
      type: "button",
      class: "btn-release danger",
      "aria-label": `强拆 force release ${id}`,
      onclick: () => release(id),
    }, "强拆"));
  const element = h("article", { id: `agent-${id}`, class: "tile", "aria-label": `坐席 agent ${id}` },
    h("div", { class: "name" }, name, h("small", {}, id)),
    h("div", { class: "state-text" }),
    h("div", { class: "reason" }),
    h("div", { class: "time" }),
    actions);
  return { element, state: null, since: Date.now() };
}

function setState(a, state, reason, since) {
  const e = a.element;
  if (a.state !== state) {
    a.state = state;
    e.dataset.state = state;
    e.querySelector(".state-text").replaceChildren(label(STATES[state], state));
    e.querySelector(".actions").classList.toggle("hidden", !ON_A_CALL.includes(state));
  }
  e.dataset.acdState = a.acd || state;
  e.querySelector(".reason").replaceChildren(reason ? label(REASONS[reason], reason) : "");
  a.since = since;
  e.querySelector(".time").textContent = duration(Date.now() - since);
}

setInterval(() => {
  for (const a of agents.values()) a.element.querySelector(".time").textContent = duration(Date.now() - a.since);
  for (const td of document.querySelectorAll("#active-calls td.duration")) {
    td.textContent = duration(Date.now() - Number(td.dataset.since));
  }
}, 1000);

/** An action's error: kept until the next action (polls do not clear it). */
function actionError(err) {
  showError($("#error"), err);
  $("#error").dataset.from = "action";
}

async function supervise(agent, mode, zh) {
  actionError(null);
  try {
    const r = await session.post("/api/v1/supervise", { agent_id: agent, mode });
    $("#notice").textContent = `${zh} ${agent}: 正在呼叫您的话机 ${r.ringing} ringing your phone`;
  } catch (err) {
    actionError(err);
  }
}

async function release(agent) {
  if (!confirm(`强拆 ${agent} 的通话？ Force-release ${agent}'s call?`)) return;
  actionError(null);
  try {
    await session.post("/api/v1/agent/call/hangup", { agent_id: agent });
    $("#notice").textContent = `已强拆 ${agent} released`;
    refresh();
  } catch (err) {
    actionError(err);
  }
}

// ----- queues and calls ------------------------------------------------------

function showQueues(groups) {
  $("#queues tbody").replaceChildren(...groups.map((g) => h("tr", { dataset: { group: g.group } },
    h("td", {}, g.group),
    h("td", { class: "waiting" }, String(g.calls_waiting ?? 0)),
    h("td", {}, duration(ms(g.longest_wait))),
    h("td", {}, percent(g.answer_rate_20)),
    h("td", {}, percent(g.answer_rate_30)),
    h("td", {}, g.asa ? `${(ms(g.asa) / 1000).toFixed(1)} s` : "—"))));
}

const CALL_STATES = { talking: ["通话", "talking"], queued: ["排队", "queued"], ivr: ["IVR", "in the IVR"] };

function showCalls(calls) {
  const rows = calls.map((c) => h("tr", { dataset: { callId: c.call_id } },
    h("td", {}, c.serial || c.call_id),
    h("td", {}, c.caller || "—"),
    h("td", {}, c.called || "—"),
    h("td", {}, label(CALL_STATES[c.state], c.state)),
    h("td", {}, c.group_id || "—"),
    h("td", {}, c.agent_id || "—"),
    h("td", { class: "duration", dataset: { since: String(startedMs(c.started_at)) } },
      duration(Date.now() - startedMs(c.started_at)))));
  if (!rows.length) rows.push(h("tr", { class: "empty" }, h("td", { colspan: 7 }, "无通话 no calls")));
  $("#active-calls tbody").replaceChildren(...rows);
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
