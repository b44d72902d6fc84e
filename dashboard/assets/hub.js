// The shared browser client of every diemcau page: token from the URL fragment, one websocket with
// auth, subscribe and resume by seq, failing over to another node of the hub (or back to the same one)
// with full-jitter backoff, the merged live state, and a durable outbox (localStorage) so changes made
// offline are sent exactly once when the hall is back.

import { t } from "./i18n.js";

const TOKEN_KEY = "diemcau.token";
const NO_OP_ID = new Set(["subscribe", "ping", "site.heartbeat"]);
const RETRYABLE = new Set(["rate_limited", "internal_error"]);
const PING_AFTER_MS = 4000; // without a frame for this long, ping
const DEAD_AFTER_MS = 10000; // without one for this long, the node is gone even if its TCP connection is not
const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 10000;

/** The page's token: from `#token=` (then removed from the address bar), else this tab's memory. */
export function readToken() {
  const match = location.hash.match(/(?:^#|&)token=([^&]+)/);
  if (match) {
    const token = decodeURIComponent(match[1]);
    sessionStorage.setItem(TOKEN_KEY, token);
    history.replaceState(null, "", location.pathname + location.search);
    return token;
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Ask for a token with a small form when the link carried none; resolves with what was typed. */
export function askToken(message) {
  return new Promise((resolve) => {
    const form = document.createElement("form");
    form.className = "token-form";
    form.innerHTML = `<label><span></span><input name="token" autocomplete="off" required></label>
      <button type="submit">OK</button>`;
    form.querySelector("span").textContent = message;
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const token = form.token.value.trim();
      sessionStorage.setItem(TOKEN_KEY, token);
      form.remove();
      resolve(token);
    });
    document.body.prepend(form);
    form.token.focus();
  });
}

/** A fresh op_id that sorts by time: the time in ms (12 hex digits), then 80 random bits. The hub's
 * log indexes op_ids: ids arriving in time order go in at the index's end, where random ones would
 * rewrite a page of it per command (see new_op_id in sites/client.py). */
export function newOpId() {
  const random = Array.from(crypto.getRandomValues(new Uint8Array(10)), (b) => b.toString(16).padStart(2, "0"));
  return Date.now().toString(16).padStart(12, "0") + random.join("");
}

/** Full jitter: anywhere from 0 to min(cap, base * 2^attempt), so the pages of a node that went away spread
 * their retries over the whole window instead of knocking together. */
export function backoffDelay(attempt, random = Math.random) {
  return random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
}

/** A node's websocket URL from its base URL (`https://n2.example` → `wss://n2.example/ws`). */
export function wsUrl(base) {
  const url = new URL(base, location.href);
  if (url.protocol === "http:" || url.protocol === "https:") {
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.pathname = url.pathname.replace(/\/$/, "") + "/ws";
  }
  url.search = url.hash = "";
  return url.href;
}

/** A node's base URL from its websocket URL (`wss://n2.example/ws` → `https://n2.example/`). */
export function httpBase(ws) {
  const url = new URL(ws);
  url.protocol = url.protocol === "wss:" ? "https:" : "http:";
  url.pathname = url.pathname.replace(/ws$/, "");
  return url.href;
}

/**
 * The nodes a page may use: the one it was given (its own origin; never forgotten) and those the hub
 * announces (each list replaces the last). It starts on the given one, then picks at random among the nodes
 * not tried since it last connected, the one that just failed last: as sites/nodes.py does.
 */
export class Nodes {
  constructor(given) {
    this.given = [...new Set(given.map(wsUrl))];
    this.announced = [];
    this.tried = new Set(); // this round's
    this.avoid = null; // the node that failed: the round tries it last
    this.last = null;
  }

  get urls() {
    return [...new Set([...this.given, ...this.announced])];
  }

  announce(bases) {
    this.announced = (bases || []).flatMap((base) => {
      try {
        return [wsUrl(base)];
      } catch {
        return [];
      }
    });
  }

  pick() {
    const urls = this.urls;
    if (urls.every((url) => this.tried.has(url))) {
      this.tried = new Set();
      this.avoid = this.last;
    }
    const fresh = urls.filter((url) => !this.tried.has(url));
    const preferred = fresh.filter((url) => url !== this.avoid);
    const from = preferred.length ? preferred : fresh;
    const url = this.last === null ? from[0] : from[Math.floor(Math.random() * from.length)];
    this.tried.add(url);
    this.last = url;
    return url;
  }

  connected(url) {
    this.tried = new Set();
    this.avoid = url;
  }
}

/** A failed command: `code` is the contract's error code. */
export class CommandError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/**
 * One live connection to the hub, to whichever of its nodes is up (`nodes`: base URLs beyond the page's own;
 * the hub announces the live ones). A node silent for 10 s is given up; a command in flight that carries an
 * op_id is sent again, with it, on the next connection.
 * Events: "status" (detail: "connecting" | "online" | "offline" | "denied"), "auth" (identity), "nodes" (the
 * hub's frame), "state" (detail: {full, sites, questions, frame}: ids that changed), "outbox" (detail: pending count).
 */
export class HubConnection extends EventTarget {
  constructor(token, { subscribe = true, url, nodes = [] } = {}) {
    super();
    this.token = token;
    this.subscribe = subscribe;
    this.nodes = new Nodes([url || location.origin, ...nodes]);
    this.url = this.nodes.given[0];
    this.status = "connecting";
    this.identity = null;
    this.state = null;
    this.skewMs = 0;
    this.nextId = 1;
    this.pending = new Map();
    this.attempt = 0;
    this.ws = null;
    this.stopped = false;
    this.outboxKey = `diemcau.outbox.${token.split(".")[0]}`;
  }

  start() {
    this._open();
    this.watch = setInterval(() => this._watch(), 1000);
    window.addEventListener("online", () => this.reconnectNow());
    // Chromium keeps a dead socket open when the network goes; close it so the page says offline at once.
    window.addEventListener("offline", () => this.ws && this.ws.close());
    return this;
  }

  /** Connect again now, without waiting out the backoff: the network is back, or the user asked. A socket
   * still opening (perhaps over a network that has gone) is dropped; if online already, the outbox is sent.
   * The new socket opens on the next turn of the event loop, once the browser's `online` has settled. */
  reconnectNow() {
    if (this.status === "denied" || this.stopped) return;
    if (this.status === "online") {
      this._flush();
      return;
    }
    clearTimeout(this.timer);
    this.timer = null;
    this.attempt = 0;
    this.ws?.close();
    this._reconnectSoon(0);
  }

  /** The base URL of the node this page is on: its own origin, until it fails over to another node. */
  get base() {
    return httpBase(this.url);
  }

  /** `path` on the node this page is on. */
  href(path) {
    return new URL(path, this.base).href;
  }

  /** `fetch` from the node this page is on, with the page's token (a node that served the page may be gone). */
  fetch(path, options = {}) {
    const headers = { ...options.headers, Authorization: `Bearer ${this.token}` };
    return fetch(this.href(path), { ...options, headers });
  }

  /** Server time now, corrected for this browser's clock skew. */
  serverNow() {
    return Date.now() + this.skewMs;
  }

  /** Send a command and resolve with its result; rejects with CommandError. One that changes state (it carries
   * an op_id) and is still unanswered when the connection goes is sent again on the next one. */
  send(type, fields = {}) {
    if (this.status !== "online") return Promise.reject(new CommandError("offline", "not connected"));
    const id = this.nextId++;
    const frame = { id, type, ...fields };
    if (!NO_OP_ID.has(type) && !frame.op_id) frame.op_id = newOpId();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, frame });
      this.ws.send(JSON.stringify(frame));
    });
  }

  /** Round-trip time of a ping, in milliseconds. */
  async ping() {
    const started = performance.now();
    await this.send("ping", {});
    return Math.round(performance.now() - started);
  }

  /** Queue a state-changing command durably: kept across reloads, sent once online, exactly once by op_id. */
  submit(type, fields = {}) {
    const entry = { op_id: newOpId(), type, fields, queued: Date.now() };
    const outbox = this.outbox();
    outbox.push(entry);
    this._saveOutbox(outbox);
    if (this.status === "online") this._flush();
    return entry.op_id;
  }

  outbox() {
    try {
      return JSON.parse(localStorage.getItem(this.outboxKey) || "[]");
    } catch {
      return [];
    }
  }

  _saveOutbox(outbox) {
    localStorage.setItem(this.outboxKey, JSON.stringify(outbox));
    this._emit("outbox", outbox.length);
  }

  /** Send the outbox in order, one at a time; an entry queued meanwhile is sent by the same pass. */
  async _flush() {
    if (this.flushing) return;
    this.flushing = true;
    try {
      let entry;
      while (this.status === "online" && (entry = this.outbox()[0])) {
        let outcome;
        try {
          outcome = { result: await this.send(entry.type, { ...entry.fields, op_id: entry.op_id }) };
        } catch (error) {
          if (error.code === "offline" || RETRYABLE.has(error.code)) break;
          outcome = { error };
        }
        this._saveOutbox(this.outbox().filter((e) => e.op_id !== entry.op_id));
        this._emit("sent", { entry, ...outcome });
      }
    } finally {
      this.flushing = false;
    }
  }

  _emit(name, detail) {
    this.dispatchEvent(new CustomEvent(name, { detail }));
  }

  _setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    this._emit("status", status);
  }

  _open() {
    this._setStatus(this.state ? "offline" : "connecting");
    this.url = this.nodes.pick();
    const ws = new WebSocket(this.url);
    this.ws = ws;
    this.heard = this.pinged = performance.now();
    ws.onopen = () => ws.send(JSON.stringify({ type: "auth", token: this.token }));
    ws.onmessage = (msg) => {
      this.heard = performance.now();
      this._receive(JSON.parse(msg.data));
    };
    ws.onclose = () => this._closed(ws);
  }

  /** Every second: ping a quiet node, and give up one that has said nothing for DEAD_AFTER_MS (it stopped, or the
   * network under it went, without closing the connection); an attempt that never opens is given up alike. */
  _watch() {
    const ws = this.ws;
    if (!ws || ws.readyState > WebSocket.OPEN || this.status === "denied") return;
    const now = performance.now();
    if (now - this.heard >= DEAD_AFTER_MS) {
      ws.onclose = ws.onmessage = ws.onopen = null;
      ws.close();
      this._closed(ws);
    } else if (this.status === "online" && now - this.heard >= PING_AFTER_MS && this.pinged <= this.heard) {
      this.pinged = now;
      ws.send(JSON.stringify({ id: this.nextId++, type: "ping" }));
    }
  }

  _closed(ws) {
    if (ws !== this.ws) return;
    for (const [id, { reject, frame }] of this.pending) {
      if (frame.op_id) continue; // sent again, with its op_id, once connected
      reject(new CommandError("offline", "connection lost"));
      this.pending.delete(id);
    }
    if (this.status === "denied" || this.stopped) return;
    this._setStatus("offline");
    this._reconnectSoon();
  }

  _reconnectSoon(delay) {
    if (this.status === "online" || this.status === "denied" || this.timer) return;
    const wait = delay ?? backoffDelay(this.attempt++);
    this.timer = setTimeout(() => {
      this.timer = null;
      this._open();
    }, wait);
  }

  _receive(frame) {
    if (frame.now) this.skewMs = Date.parse(frame.now) - Date.now();
    switch (frame.type) {
      case "auth_ok": {
        const unanswered = [...this.pending.values()]; // commands with an op_id the last connection left
        this.identity = frame;
        this.attempt = 0;
        this.nodes.connected(this.url);
        this.nodes.announce(frame.nodes);
        this._setStatus("online");
        this._emit("auth", frame);
        if (this.subscribe) {
          const since = this.state ? { since: this.state.seq } : {};
          this.send("subscribe", since).catch(() => {});
        }
        for (const entry of unanswered) this.ws.send(JSON.stringify(entry.frame));
        this._flush();
        return;
      }
      case "auth_invalid":
        this._setStatus("denied");
        sessionStorage.removeItem(TOKEN_KEY);
        // Not sent: an outbox entry stays queued (as for a connection lost), it is not reported as refused.
        for (const { reject } of this.pending.values()) reject(new CommandError("offline", frame.message));
        this.pending.clear();
        return;
      case "nodes":
        this.nodes.announce(frame.nodes);
        this.identity = { ...this.identity, node: frame.node, nodes: frame.nodes };
        this._emit("nodes", frame);
        return;
      case "result": {
        const waiting = this.pending.get(frame.id);
        if (!waiting) return;
        this.pending.delete(frame.id);
        if (frame.success) waiting.resolve(frame.result);
        else waiting.reject(new CommandError(frame.error.code, frame.error.message));
        return;
      }
      case "snapshot":
        this.state = toState(frame.state);
        this._emit("state", { full: true, sites: [], questions: [], frame });
        return;
      case "event":
        if (!this.state) return;
        this._emit("state", mergeFrame(this.state, frame, this.identity.shared));
        return;
    }
  }
}

/** A snapshot as the pages hold it: sites and questions in Maps keyed by id (insertion order kept). */
function toState(snapshot) {
  return {
    ...snapshot,
    sites: new Map(snapshot.sites.map((s) => [s.id, s])),
    questions: new Map(snapshot.questions.map((q) => [q.id, q])),
  };
}

/**
 * Merge a pushed frame in place; return which ids changed so pages re-render only those. `shared` is the list of
 * shared parts the hub named in auth_ok: each present is replaced whole, but for `timeline_tail`, which extends the
 * timeline.
 */
function mergeFrame(state, frame, shared) {
  state.seq = Math.max(state.seq, frame.seq);
  for (const key of shared) {
    if (!(key in frame)) continue;
    if (key === "timeline_tail") mergeTail(state, frame.timeline_tail);
    else state[key] = frame[key];
  }
  for (const site of frame.sites || []) state.sites.set(site.id, site);
  for (const q of frame.questions || []) state.questions.set(q.id, q);
  return {
    full: false,
    sites: (frame.sites || []).map((s) => s.id),
    questions: (frame.questions || []).map((q) => q.id),
    frame,
  };
}

/** The hub re-sends the timeline's last points only: drop ours from the first of them on, then take theirs. */
function mergeTail(state, tail) {
  if (tail.length) state.timeline = (state.timeline || []).filter((point) => point[0] < tail[0][0]).concat(tail);
}

/** Start a page: read (or ask for) the token, connect, and keep the `[data-connection]` banner current. */
export async function startPage({ askMessage = "Mã truy cập / Access token", subscribe = true } = {}) {
  const token = readToken() || (await askToken(askMessage));
  const conn = new HubConnection(token, { subscribe }).start();
  const banner = document.querySelector("[data-connection]");
  if (banner) {
    const show = () => {
      banner.dataset.connection = conn.status;
      banner.textContent = t(`conn.${conn.status}`);
    };
    conn.addEventListener("status", show);
    window.addEventListener("langchange", show);
    show();
  }
  return conn;
}
