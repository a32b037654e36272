// 网页话机 The browser phone of the phone bar (issue 17 §2–3): the agent's
// page registers as their phone on the live WebSocket and answers calls
// with WebRTC (G.711 over DTLS-SRTP to hotline's ICE-lite media address).
// No SIP stack in the page: the protocol is src/call/web_phone/mod.rs's
// `phone.*` messages.
//
// Stable element ids (tests/webrtc.rs drives the page by these):
//   #phone-enable 开启网页话机 / #phone-disable, #phone-status[data-state=
//     "off|starting|ready|ringing|connecting|talking|held|mic-denied|
//      no-mic|offline|restarting|failed"], #phone-caller
//   #btn-answer 接听, #btn-reject 拒接, #btn-phone-hangup 挂机, #btn-mute 静音[aria-pressed]
//   #phone-auto-answer (checkbox: answer by itself), #phone-processing
//     (checkbox, on: the browser's echo cancellation, noise suppression, AGC)
//   #mic-select, #speaker-select (devices), #mic-level, #speaker-level (<meter>)
//   #remote-audio (<audio>: what the caller says)
//
// window.hotlinePhone (for tests and diagnostics): state(), leg(),
//   remotePeak() → {hz, db} the strongest tone the caller sends,
//   stats() → the RTCPeerConnection's inbound/outbound audio counters,
//   restartIce() → ask hotline for an ICE restart now (as a lost media
//   path does by itself).

const $ = (sel) => document.querySelector(sel);

/** A phone state's label: Chinese first, English beside. */
const LABELS = {
  off: ["网页话机未开启", "browser phone off"],
  starting: ["正在开启…", "starting…"],
  ready: ["网页话机就绪", "browser phone ready"],
  ringing: ["来电振铃", "ringing"],
  connecting: ["正在接通…", "connecting…"],
  talking: ["通话中", "talking"],
  held: ["通话保持", "on hold"],
  "mic-denied": ["麦克风被拒绝：请在浏览器中允许使用麦克风", "microphone denied: allow it in the browser"],
  "no-mic": ["没有麦克风", "no microphone found"],
  offline: ["连接中断，正在重连…", "connection lost, reconnecting…"],
  restarting: ["媒体重连中…", "media path lost, restarting ICE…"],
  failed: ["媒体连接失败", "media connection failed"],
};

export class WebPhone {
  /** `send(obj)` puts a message on the live WebSocket. */
  constructor(send) {
    this.send = send;
    this.enabled = false;
    this.mic = null;          // MediaStream of the microphone
    this.call = null;         // {leg, pc, caller, answered}
    this.ringer = null;       // ring tone
    this.audio = null;        // AudioContext (meters, ring tone)
    this.remoteAnalyser = null;
    this.micAnalyser = null;
    this.setState("off");
    this.bind();
    window.hotlinePhone = {
      state: () => this.state,
      leg: () => this.call && this.call.leg,
      remotePeak: () => this.remotePeak(),
      stats: () => this.stats(),
      restartIce: () => this.restartIce(true),
    };
    setInterval(() => this.meters(), 200);
  }

  bind() {
    $("#phone-enable").addEventListener("click", () => this.enable());
    $("#phone-disable").addEventListener("click", () => this.disable());
    $("#btn-answer").addEventListener("click", () => this.answer());
    $("#btn-reject").addEventListener("click", () => this.reject());
    $("#btn-phone-hangup").addEventListener("click", () => this.hangup());
    $("#btn-mute").addEventListener("click", () => this.toggleMute());
    $("#mic-select").addEventListener("change", () => this.openMic());
    $("#phone-processing").addEventListener("change", () => { if (this.mic) this.openMic(); });
    $("#speaker-select").addEventListener("change", () => this.setSpeaker());
  }

  setState(state, detail) {
    this.state = state;
    const el = $("#phone-status");
    el.dataset.state = state;
    const [zh, en] = LABELS[state] || [state, state];
    el.replaceChildren(zh, " ", Object.assign(document.createElement("small"), { textContent: en }));
    if (detail) el.title = detail;
    const ringing = state === "ringing";
    $("#btn-answer").disabled = !ringing;
    $("#btn-reject").disabled = !ringing;
    $("#btn-phone-hangup").disabled = !["connecting", "talking", "held", "restarting", "failed"].includes(state) || !this.call;
    $("#btn-mute").disabled = !["talking", "held"].includes(state);
    $("#phone-enable").classList.toggle("hidden", this.enabled);
    $("#phone-disable").classList.toggle("hidden", !this.enabled);
  }

  // ----- the microphone -------------------------------------------------------

  async enable() {
    this.enabled = true;
    this.setState("starting");
    if (!(await this.openMic())) return;
    await this.listDevices();
    this.register();
  }

  disable() {
    this.enabled = false;
    this.send({ type: "phone.unregister" });
    if (this.call) this.endCall();
    if (this.mic) this.mic.getTracks().forEach((t) => t.stop());
    this.mic = null;
    this.setState("off");
  }

  async openMic() {
    const deviceId = $("#mic-select").value;
    try {
      // The browser's voice processing (echo cancellation, noise
      // suppression, gain control) is on unless the agent turns it off
      // (a good headset, or a test signal it would treat as noise).
      const processing = $("#phone-processing").checked;
      const audio = {
        echoCancellation: processing,
        noiseSuppression: processing,
        autoGainControl: processing,
      };
      if (deviceId) audio.deviceId = { exact: deviceId };
      const mic = await navigator.mediaDevices.getUserMedia({ audio, video: false });
      if (this.mic) this.mic.getTracks().forEach((t) => t.stop());
      this.mic = mic;
      const track = mic.getAudioTracks()[0];
      if (this.call && this.call.pc) {
        const sender = this.call.pc.getSenders().find((s) => s.track && s.track.kind === "audio");
        if (sender) await sender.replaceTrack(track);
      }
      this.micAnalyser = this.analyser(mic);
      return true;
    } catch (err) {
      const denied = err && (err.name === "NotAllowedError" || err.name === "SecurityError");
      this.setState(denied ? "mic-denied" : "no-mic", String(err));
      this.enabled = false;
      $("#phone-enable").classList.remove("hidden");
      $("#phone-disable").classList.add("hidden");
      return false;
    }
  }

  async listDevices() {
    let devices = [];
    try { devices = await navigator.mediaDevices.enumerateDevices(); } catch { return; }
    const fill = (sel, kind) => {
      const el = $(sel);
      const current = el.value;
      const options = devices.filter((d) => d.kind === kind).map((d, i) => {
        const o = document.createElement("option");
        o.value = d.deviceId;
        o.textContent = d.label || `${kind} ${i + 1}`;
        return o;
      });
      el.replaceChildren(...options);
      if (current) el.value = current;
    };
    fill("#mic-select", "audioinput");
    fill("#speaker-select", "audiooutput");
  }

  async setSpeaker() {
    const el = $("#remote-audio");
    if (el.setSinkId) {
      try { await el.setSinkId($("#speaker-select").value); } catch { /* kept as it was */ }
    }
  }

  // ----- the socket -----------------------------------------------------------

  register() {
    if (!this.enabled || !this.mic) return;
    const resume = this.call && this.call.answered ? [this.call.leg] : [];
    this.send({ type: "phone.register", resume });
  }

  /** The live socket came (back) up: register again, resuming the call. */
  online() {
    if (this.enabled) this.register();
  }

  /** The live socket dropped: the media goes on; the phone re-registers. */
  offline() {
    if (!this.enabled) return;
    if (this.call && this.call.answered) return; // the call survives a short drop
    this.setState("offline");
  }

  onMessage(m) {
    switch (m.type) {
      case "phone.registered":
        if (!this.call) this.setState("ready");
        else if (this.call.answered) {
          this.setState(this.call.held ? "held" : "talking");
          // Back after a drop: a media path lost meanwhile is restarted.
          const pc = this.call.pc;
          if (pc && pc.connectionState !== "connected") this.restartIce();
        }
        return true;
      case "phone.offer": return this.offered(m), true;
      case "phone.cancel":
        if (this.call && this.call.leg === m.leg) this.endCall();
        return true;
      case "phone.bye":
        if (this.call && this.call.leg === m.leg) this.endCall();
        return true;
      case "phone.update": return this.updated(m), true;
      case "phone.error":
        console.warn("phone.error", m);
        if (this.state === "restarting" && this.call && this.call.pc) {
          const up = this.call.pc.connectionState === "connected";
          this.setState(up ? (this.call.held ? "held" : "talking") : "failed", m.message);
        }
        return true;
      default:
        return m.type && m.type.startsWith("phone.");
    }
  }

  // ----- a call ---------------------------------------------------------------

  offered(m) {
    if (this.call) {
      // One call at a time: a second offer is busy here.
      this.send({ type: "phone.reject", leg: m.leg, code: 486 });
      return;
    }
    this.call = { leg: m.leg, offer: m.sdp, caller: m.caller, answered: false, held: false };
    $("#phone-caller").textContent = m.caller_name ? `${m.caller_name} ${m.caller}` : (m.caller || "");
    this.send({ type: "phone.ringing", leg: m.leg });
    if (m.auto_answer || $("#phone-auto-answer").checked) {
      this.answer();
    } else {
      this.setState("ringing");
      this.ring(true);
    }
  }

  async answer() {
    const call = this.call;
    if (!call || call.pc) return;
    this.ring(false);
    this.setState("connecting");
    try {
      const pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: "max-bundle", rtcpMuxPolicy: "require" });
      call.pc = pc;
      for (const track of this.mic.getAudioTracks()) pc.addTrack(track, this.mic);
      pc.ontrack = (e) => {
        const stream = e.streams[0] || new MediaStream([e.track]);
        const el = $("#remote-audio");
        el.srcObject = stream;
        el.play().catch(() => { /* autoplay: the meter still reads it */ });
        this.remoteAnalyser = this.analyser(stream);
      };
      pc.onconnectionstatechange = () => {
        if (this.call !== call) return;
        clearTimeout(call.lostTimer);
        if (pc.connectionState === "connected") this.setState(call.held ? "held" : "talking");
        // A media path lost (the network dropped or changed): an ICE
        // restart, at once when ICE gave up, after 3 s of silence else.
        if (pc.connectionState === "failed") this.restartIce();
        if (pc.connectionState === "disconnected") {
          call.lostTimer = setTimeout(() => {
            if (this.call === call && pc.connectionState !== "connected") this.restartIce();
          }, 3000);
        }
      };
      await pc.setRemoteDescription({ type: "offer", sdp: call.offer });
      await pc.setLocalDescription(await pc.createAnswer());
      await this.gathered(pc);
      call.answered = true;
      this.send({ type: "phone.answer", leg: call.leg, sdp: pc.localDescription.sdp });
    } catch (err) {
      console.error("answer failed", err);
      this.send({ type: "phone.reject", leg: call.leg, code: 603 });
      this.endCall();
      this.setState("failed", String(err));
    }
  }

  /** Non-trickle: the answer goes once the browser gathered (bounded). */
  gathered(pc) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((done) => {
      const timer = setTimeout(done, 2000);
      pc.addEventListener("icegatheringstatechange", () => {
        if (pc.iceGatheringState === "complete") { clearTimeout(timer); done(); }
      });
    });
  }

  /** Ask hotline for an ICE restart (new credentials in a re-offer, which
   *  restarts ICE here): at most one per 10 s unless `now`. The call and
   *  its DTLS keys stay; the browser gathers its addresses again. */
  restartIce(now) {
    const call = this.call;
    if (!call || !call.answered || !call.pc) return false;
    const at = Date.now();
    if (!now && call.restartedAt && at - call.restartedAt < 10000) return false;
    call.restartedAt = at;
    this.setState("restarting");
    this.send({ type: "phone.restart", leg: call.leg });
    return true;
  }

  /** A re-offer (hold, resume, an ICE restart): answered at once. */
  async updated(m) {
    const call = this.call;
    if (!call || call.leg !== m.leg || !call.pc) {
      this.send({ type: "phone.updated", leg: m.leg, code: 481 });
      return;
    }
    try {
      await call.pc.setRemoteDescription({ type: "offer", sdp: m.sdp });
      await call.pc.setLocalDescription(await call.pc.createAnswer());
      call.held = /a=(sendonly|inactive)/.test(m.sdp);
      // After an ICE restart the state follows the connection.
      if (!m.restart || call.pc.connectionState === "connected") this.setState(call.held ? "held" : "talking");
      this.send({ type: "phone.updated", leg: m.leg, sdp: call.pc.localDescription.sdp });
    } catch (err) {
      this.send({ type: "phone.updated", leg: m.leg, code: 488 });
    }
  }

  reject() {
    if (!this.call) return;
    this.send({ type: "phone.reject", leg: this.call.leg, code: 486 });
    this.endCall();
  }

  hangup() {
    if (!this.call) return;
    this.send({ type: "phone.hangup", leg: this.call.leg });
    this.endCall();
  }

  endCall() {
    this.ring(false);
    if (this.call && this.call.pc) this.call.pc.close();
    this.call = null;
    this.remoteAnalyser = null;
    $("#remote-audio").srcObject = null;
    $("#phone-caller").textContent = "";
    $("#btn-mute").setAttribute("aria-pressed", "false");
    if (this.mic) this.mic.getAudioTracks().forEach((t) => { t.enabled = true; });
    this.setState(this.enabled ? "ready" : "off");
  }

  /** The ACD's state of this agent: a call held from the phone bar shows
   *  as held here too (the caller hears music; the browser's media stays). */
  agentState(state) {
    if (!this.call || !this.call.answered) return;
    if (state === "on_hold" && this.state === "talking") this.setState("held");
    if (state === "talking" && this.state === "held" && !this.call.held) this.setState("talking");
  }

  toggleMute() {
    if (!this.mic) return;
    const muted = $("#btn-mute").getAttribute("aria-pressed") !== "true";
    this.mic.getAudioTracks().forEach((t) => { t.enabled = !muted; });
    $("#btn-mute").setAttribute("aria-pressed", String(muted));
  }

  // ----- sound: ring tone, meters -------------------------------------------------

  context() {
    if (!this.audio) this.audio = new AudioContext();
    if (this.audio.state === "suspended") this.audio.resume().catch(() => {});
    return this.audio;
  }

  /** The Chinese ring-back cadence (450 Hz, 1 s on, 4 s off). */
  ring(on) {
    if (this.ringer) {
      clearInterval(this.ringer.timer);
      this.ringer.osc.stop();
      this.ringer = null;
    }
    if (!on) return;
    const ctx = this.context();
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = 450;
    gain.gain.value = 0;
    osc.connect(gain).connect(ctx.destination);
    osc.start();
    const beat = () => {
      const t = ctx.currentTime;
      gain.gain.setValueAtTime(0.2, t);
      gain.gain.setValueAtTime(0, t + 1);
    };
    beat();
    this.ringer = { osc, timer: setInterval(beat, 5000) };
  }

  analyser(stream) {
    const ctx = this.context();
    const a = ctx.createAnalyser();
    a.fftSize = 2048;
    ctx.createMediaStreamSource(stream).connect(a);
    return a;
  }

  level(a) {
    if (!a) return 0;
    const data = new Float32Array(a.fftSize);
    a.getFloatTimeDomainData(data);
    let sum = 0;
    for (const v of data) sum += v * v;
    return Math.min(1, Math.sqrt(sum / data.length) * 4);
  }

  meters() {
    $("#mic-level").value = this.level(this.micAnalyser);
    $("#speaker-level").value = this.level(this.remoteAnalyser);
  }

  remotePeak() {
    const a = this.remoteAnalyser;
    if (!a) return null;
    const bins = new Float32Array(a.frequencyBinCount);
    a.getFloatFrequencyData(bins);
    let best = 0;
    for (let i = 1; i < bins.length; i++) if (bins[i] > bins[best]) best = i;
    return { hz: (best * a.context.sampleRate) / a.fftSize, db: bins[best] };
  }

  async stats() {
    if (!this.call || !this.call.pc) return null;
    const out = {};
    (await this.call.pc.getStats()).forEach((r) => {
      if (r.type === "inbound-rtp" && r.kind === "audio") out.received = r.packetsReceived;
      if (r.type === "outbound-rtp" && r.kind === "audio") out.sent = r.packetsSent;
      if (r.type === "transport") out.dtls = r.dtlsState;
    });
    return out;
  }
}
