// Shared helpers of the reference pages: the login session (token in
// sessionStorage, one per page so an agent and a supervisor can use two
// tabs of one browser), a fetch wrapper that sends the bearer token and
// turns the API's JSON errors ({"error": {"code", "message", "message_zh"}})
// into exceptions, the live WebSocket with reconnect, and labels.

/**
 * An API error: HTTP status, the API's stable code, its English message
 * (the detail) and its Chinese text. Shown Chinese first, then the detail
 * and the code for whoever has to look it up.
 */
export class ApiError extends Error {
  constructor(status, code, message, messageZh) {
    const detail = `${message} (${code}, HTTP ${status})`;
    super(messageZh ? `${messageZh} — ${detail}` : detail);
    this.status = status;
    this.code = code;
    this.messageZh = messageZh || null;
  }
}

/** The login of one page (`name`: "phonebar", "wallboard"). */
export class Session {
  constructor(name) {
    this.key = `hotline.${name}`;
    /** Called when the token stops working (401). */
    this.onExpired = () => {};
  }
  get token() { return sessionStorage.getItem(`${this.key}.token`); }
  get user() {
    try { return JSON.parse(sessionStorage.getItem(`${this.key}.user`) || "null"); }
    catch { return null; }
  }
  save(login) {
    sessionStorage.setItem(`${this.key}.token`, login.token);
    sessionStorage.setItem(`${this.key}.user`, JSON.stringify(login.user));
  }
  clear() {
    sessionStorage.removeItem(`${this.key}.token`);
    sessionStorage.removeItem(`${this.key}.user`);
  }

  /** `POST /api/v1/login`; keeps the token. */
  async login(username, password) {
    const r = await request(null, "POST", "/api/v1/login", { username, password });
    this.save(r);
    return r.user;
  }

  /** `POST /api/v1/logout` (errors ignored: the token is dropped anyway). */
  async logout() {
    const token = this.token;
    this.clear();
    if (token) {
      try { await request(token, "POST", "/api/v1/logout"); } catch { /* already gone */ }
    }
  }

  /** An authenticated call; `body` is sent as JSON. */
  async call(method, path, body) {
    try {
      return await request(this.token, method, path, body);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        this.clear();
        this.onExpired(e);
      }
      throw e;
    }
  }
  get(path) { return this.call("GET", path); }
  post(path, body) { return this.call("POST", path, body ?? {}); }
}

async function request(token, method, path, body) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let r;
  try {
    r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, "network", `网络错误 network error: ${e.message}`);
  }
  if (r.status === 204) return null;
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!r.ok) {
    const err = json && json.error ? json.error : { code: "http", message: text || r.statusText };
    throw new ApiError(r.status, err.code, err.message, err.message_zh);
  }
  return json;
}

/**
 * The live event stream (`/api/v1/events?token=…`) with reconnect
 * (1 s, doubling up to 15 s). `onMessage(obj)` gets each JSON message,
 * `onStatus(connected)` each change. Returns `{close()}`.
 */
export function connectEvents(session, onMessage, onStatus) {
  let ws = null;
  let closed = false;
  let delay = 1000;
  let timer = null;
  const open = () => {
    if (closed || !session.token) return;
    const proto = location.protocol === "https:" ? "wss" : "ws";
    ws = new WebSocket(`${proto}://${location.host}/api/v1/events?token=${encodeURIComponent(session.token)}`);
    ws.onopen = () => { delay = 1000; };
    ws.onmessage = (m) => {
      let obj;
      try { obj = JSON.parse(m.data); } catch { return; }
      if (obj.type === "hello") onStatus(true);
      onMessage(obj);
    };
    ws.onclose = () => {
      onStatus(false);
      ws = null;
      if (!closed) {
        timer = setTimeout(open, delay);
        delay = Math.min(delay * 2, 15000);
      }
    };
  };
  open();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      if (ws) ws.close();
    },
    /** Send a message (the browser phone's); false while disconnected. */
    send(obj) {
      if (!ws || ws.readyState !== WebSocket.OPEN) return false;
      ws.send(JSON.stringify(obj));
      return true;
    },
  };
}

/** Agent states: Chinese label and English. */
export const STATES = {
  logged_out: ["签出", "logged out"],
  idle: ["空闲", "idle"],
  not_ready: ["示忙", "not ready"],
  ringing: ["振铃", "ringing"],
  talking: ["通话", "talking"],
  on_hold: ["保持", "on hold"],
  after_call_work: ["话后整理", "after-call work"],
  outbound: ["外呼", "outbound"],
  unknown: ["未知", "unknown"],
};

export const REASONS = {
  break: ["休息", "break"],
  training: ["培训", "training"],
  ticket: ["工单", "ticket"],
  meeting: ["会议", "meeting"],
};

export const OUTCOMES = {
  answered: "已接听 answered",
  abandoned_in_ivr: "IVR 放弃 abandoned in IVR",
  abandoned_in_queue: "排队放弃 abandoned in queue",
  abandoned_ringing: "振铃放弃 abandoned ringing",
  queue_timeout: "排队超时 queue timeout",
  voicemail: "留言 voicemail",
  callback: "回呼 callback",
  transferred_out: "转出 transferred out",
  ivr_completed: "IVR 完成 IVR completed",
  blocked: "拦截 blocked",
  failed: "呼损 failed",
};

/** "通话 talking" as a text node pair: Chinese, then English in <small>. */
export function label(pair, fallback) {
  const [zh, en] = pair || [fallback, ""];
  const frag = document.createDocumentFragment();
  frag.append(zh);
  if (en) {
    const s = document.createElement("small");
    s.textContent = ` ${en}`;
    frag.append(s);
  }
  return frag;
}

/** Create an element: `h("td", {class: "x"}, "text", child…)`. */
export function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  e.append(...children.filter((c) => c !== undefined && c !== null));
  return e;
}

/** 75000 → "1:15"; 3723000 → "1:02:03". */
export function duration(ms) {
  if (ms === null || ms === undefined) return "—";
  const s = Math.max(0, Math.floor(ms / 1000));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return hh ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

/** An RFC 3339 time in local time, "2026-11-23 14:30:05". */
export function localTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** Show `err` (or clear with null) in the error box `box`. */
export function showError(box, err) {
  box.textContent = err ? (err.message || String(err)) : "";
}
