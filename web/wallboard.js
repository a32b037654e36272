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
//   #forecast > #forecast-<group id>.forecast-group[data-short="true|false"]
//     [data-needed][data-ready] (GET /api/v1/forecast, every 5 s and after
//     events): .name, .needed-ready ("需要 N / 就绪 M"), .detail (Erlang A
//     and C needs, calls/h expected, handle time, expected 20 s rate),
//     svg.chart[data-arrivals="a,b,…"] with rect.arrivals[data-arrivals]
//     per half hour, rect.forecast-bar (the next half hour expected),
//     polyline.rate and circle.rate-point[data-rate] (20 s answer rate),
//     line.target (90 %)
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

/** When the forecast was last asked for (ms); it reads the records. */
let forecastAt = 0;
const FORECAST_EVERY_MS = 5000;

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
    if (Date.now() - forecastAt >= FORECAST_EVERY_MS) {
      forecastAt = Date.now();
      refreshForecast();
    }
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
    forecastAt = 0;
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

// ----- forecast (issue 19) ---------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, String(v));
  }
  e.append(...children);
  return e;
}

/** The chart: arrivals per half hour as bars (the forecast dashed), the
 *  20 s answer rate as a line over them, the 90 % target dashed. */
function chart(g) {
  const W = 320, H = 110, top = 8, bottom = 18, left = 4, right = 28;
  const hist = g.history || [];
  const expected = (g.arrivals_per_hour || 0) / 2;
  const max = Math.max(1, expected, ...hist.map((b) => b.arrivals));
  const n = hist.length + 1;
  const slot = (W - left - right) / n;
  const y = (v) => top + (H - top - bottom) * (1 - v / max);
  const yRate = (r) => top + (H - top - bottom) * (1 - r);
  const parts = [];
  hist.forEach((b, i) => {
    const x = left + i * slot + 2;
    parts.push(svg("rect", { class: "arrivals", x, y: y(b.arrivals), width: slot - 4,
      height: H - bottom - y(b.arrivals), dataset: { arrivals: String(b.arrivals) } },
      svg("title", {}, `${b.arrivals} 通 calls`)));
    const at = new Date(b.from);
    if (i % 2 === 0) {
      parts.push(svg("text", { x, y: H - 5 },
        at.toLocaleTimeString("zh-CN", { hour: "2-digit", minute: "2-digit", hour12: false })));
    }
  });
  const fx = left + hist.length * slot + 2;
  parts.push(svg("rect", { class: "forecast-bar", x: fx, y: y(expected), width: slot - 4,
    height: H - bottom - y(expected), dataset: { expected: expected.toFixed(1) } },
    svg("title", {}, `预测 forecast ${expected.toFixed(1)} 通 calls`)));
  parts.push(svg("text", { x: fx, y: H - 5 }, "预测"));
  parts.push(svg("line", { class: "target", x1: left, x2: W - right, y1: yRate(0.9), y2: yRate(0.9) }));
  parts.push(svg("text", { x: W - right + 2, y: yRate(0.9) + 3 }, "90%"));
  const points = [];
  hist.forEach((b, i) => {
    if (b.answer_rate_20s === null || b.answer_rate_20s === undefined) return;
    const cx = left + i * slot + slot / 2;
    const cy = yRate(b.answer_rate_20s);
    points.push(`${cx.toFixed(1)},${cy.toFixed(1)}`);
    parts.push(svg("circle", { class: "rate-point", cx, cy, r: 2.5,
      dataset: { rate: String(b.answer_rate_20s) } },
      svg("title", {}, `20 秒接通率 ${percent(b.answer_rate_20s)}`)));
  });
  parts.unshift(svg("polyline", { class: "rate", points: points.join(" ") }));
  return svg("svg", {
    class: "chart", width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": `来话量与 20 秒接通率 arrivals and 20 s rate, ${g.group_id}`,
    dataset: { arrivals: hist.map((b) => b.arrivals).join(",") },
  }, ...parts);
}

/** The forecast on its own: its failure (no ACD, records unreadable) is
 *  shown in its panel and leaves the rest of the board alone. */
async function refreshForecast() {
  try {
    showForecast((await session.get("/api/v1/forecast")).groups || []);
  } catch (err) {
    const box = h("div", { class: "error", role: "status" });
    showError(box, err);
    $("#forecast").replaceChildren(box);
  }
}

function showForecast(groups) {
  const cards = groups.map((g) => {
    const needed = g.agents_needed;
    const shown = needed === null || needed === undefined ? "—" : String(needed);
    const a = g.erlang_a || {};
    const c = g.erlang_c || {};
    return h("article", {
      id: `forecast-${g.group_id}`,
      class: "forecast-group",
      "aria-label": `预测 forecast ${g.group_id}`,
      dataset: { short: String(!!g.short), needed: shown, ready: String(g.agents_ready) },
    },
      h("div", { class: "name" }, g.name || g.group_id, " ", h("small", {}, g.group_id)),
      h("div", { class: "needed-ready" }, `需要 ${shown} / 就绪 ${g.agents_ready}`,
        " ", h("small", {}, "needed / ready")),
      h("div", { class: "detail" },
        `Erlang A 需 ${a.agents_needed ?? "—"} · Erlang C 需 ${c.agents_needed ?? "—"} 人 `,
        h("small", {}, "needed"), h("br"),
        `预计来话 ${g.arrivals_per_hour} 通/小时 · 平均处理 ${g.handle_secs} 秒 `,
        h("small", {}, "calls/h expected · handle time s"), h("br"),
        `已签入 ${g.agents_signed_in} 人预计 20 秒接通率 A ${percent(a.answer_rate_20s_signed_in)} / C ${percent(c.answer_rate_20s_signed_in)} `,
        h("small", {}, "20 s rate expected with those signed in")),
      chart(g));
  });
  if (!cards.length) cards.push(h("p", { class: "empty" }, "无技能组 no groups"));
  $("#forecast").replaceChildren(...cards);
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
