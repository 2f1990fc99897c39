// The REST side of API.md and the token lifecycle: login, rotation before expiry, logout.
// Tokens live in sessionStorage: a reload keeps the session, a new tab or browser does not.
//
// A duplicated tab starts with a copy of sessionStorage, so two pages can hold one session.
// The server treats a retired refresh token as theft and ends the session, so the pages of one
// session rotate one at a time (a Web Lock per session) and hand each rotation to the others:
// the newest pair is written to localStorage under the session id while the lock is held, and
// announced on a BroadcastChannel. A page that gets the lock after another rotated adopts
// that pair instead of spending its retired token.

const STORE_KEY = "chat-es.session";
const ROTATED_KEY = "chat-es.rotated.";
const channel = typeof BroadcastChannel === "function" ? new BroadcastChannel("chat-es.session") : null;

/** An error answer of the contract: {"detail", "code"[, "fields"]} with its HTTP status. */
export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super(ApiError.describe(status, body, retryAfter));
    this.status = status;
    this.code = body?.code ?? "http_" + status;
    this.fields = body?.fields ?? null;
  }

  static describe(status, body, retryAfter) {
    let text = body?.detail ?? `The server answered ${status}.`;
    if (body?.fields) {
      // One line per field (the page shows these with white-space: pre-line).
      for (const [name, msgs] of Object.entries(body.fields)) text += `\n${name}: ${msgs.join(" ")}`;
    }
    if (retryAfter) text += ` (try again in ${retryAfter} s)`;
    return text;
  }
}

/** Decodes a JWT's payload (no verification: the server does that; we only need times). */
export function jwtPayload(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const padded = part + "=".repeat((4 - (part.length % 4)) % 4);
    return JSON.parse(atob(padded));
  } catch {
    return {};
  }
}

/** One JSON request; returns the parsed body or throws ApiError (status 0 when offline). */
export async function request(method, path, { body, token } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, { detail: "The server cannot be reached.", code: "offline" });
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, data, response.headers.get("Retry-After"));
  return data;
}

/**
 * The logged-in user's tokens. Fires "tokens" after every rotation (the socket reconnects
 * with the new access token) and "ended" when the session is gone (logout, expiry, reuse).
 */
export class Session extends EventTarget {
  constructor() {
    super();
    this.user = null;
    this.access = null;
    this.refreshToken = null;
    this.skewMs = 0; // server clock minus ours, from the token's iat, so expiry is judged on our clock
    this.refreshing = null;
    this.timer = null;
    this.refreshCount = 0;
    channel?.addEventListener("message", ({ data }) => this.adopt(data));
  }

  /** The session id (`sid`) the tokens belong to. */
  get sid() { return jwtPayload(this.refreshToken ?? "").sid ?? null; }

  /** Takes over a rotation another page of this session made from the pair we hold. */
  adopt(message) {
    if (!this.active || !message || message.sid !== this.sid) return false;
    if (message.ended) {
      this.end("You logged out in another tab.", { announce: false });
      return true;
    }
    if (message.previous !== this.refreshToken || !message.refresh) return false;
    this.store(message.access, message.refresh);
    this.refreshCount += 1;
    this.dispatchEvent(new Event("tokens"));
    return true;
  }

  /** Runs `body` holding this session's rotation lock (or directly where Web Locks are missing). */
  async exclusively(body) {
    const sid = this.sid;
    if (!sid || !navigator.locks) return body();
    return navigator.locks.request("chat-es.rotate." + sid, body);
  }

  get active() { return this.refreshToken !== null; }

  /** Restores a session kept across a reload; false when there is none. */
  restore() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(STORE_KEY) ?? "null");
      if (!saved?.refresh || !saved?.user) return false;
      this.user = saved.user;
      this.access = saved.access;
      this.refreshToken = saved.refresh;
      this.skewMs = saved.skewMs ?? 0;
      this.schedule();
      return true;
    } catch {
      return false;
    }
  }

  async register(username, password) {
    await request("POST", "/api/register/", { body: { username, password } });
    await this.login(username, password);
  }

  async login(username, password) {
    const data = await request("POST", "/api/login/", { body: { username, password } });
    this.user = data.user;
    this.store(data.access, data.refresh);
  }

  /** Rotates the tokens; one rotation at a time, since re-using a retired refresh token ends the session. */
  refresh() {
    this.refreshing ??= (async () => {
      try {
        await this.exclusively(async () => {
          const sid = this.sid;
          // Another page of this session may have rotated while we waited for the lock.
          if (this.adopt(readJSON(localStorage, ROTATED_KEY + sid))) return;
          const previous = this.refreshToken;
          const data = await request("POST", "/api/token/refresh/", { body: { refresh: previous } });
          const rotated = { sid, previous, access: data.access, refresh: data.refresh };
          try { localStorage.setItem(ROTATED_KEY + sid, JSON.stringify(rotated)); } catch { /* storage full or off */ }
          channel?.postMessage(rotated);
          this.store(data.access, data.refresh);
          this.refreshCount += 1;
          this.dispatchEvent(new Event("tokens"));
        });
      } catch (error) {
        if (error.status === 401) this.end("Your session has ended; please log in again.");
        throw error;
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  /** An authenticated call; an access token refused as expired is refreshed once and retried. */
  async call(method, path, body) {
    if (this.refreshing) await this.refreshing.catch(() => {});
    if (this.accessExpiresIn() < 2000) await this.refresh();
    try {
      return await request(method, path, { body, token: this.access });
    } catch (error) {
      if (error.status !== 401 || error.code !== "token_not_valid" || !this.active) throw error;
      await this.refresh();
      return request(method, path, { body, token: this.access });
    }
  }

  async logout() {
    try {
      if (this.accessExpiresIn() < 2000) await this.refresh();
      await request("POST", "/api/logout/", { body: { refresh: this.refreshToken }, token: this.access });
    } finally {
      this.end(null);
    }
  }

  /** Milliseconds until the access token expires, on our clock. */
  accessExpiresIn() {
    const { exp } = jwtPayload(this.access ?? "");
    return exp ? exp * 1000 - this.skewMs - Date.now() : 0;
  }

  store(access, refresh) {
    const { iat } = jwtPayload(access);
    if (iat) this.skewMs = iat * 1000 - Date.now();
    this.access = access;
    this.refreshToken = refresh;
    sessionStorage.setItem(STORE_KEY, JSON.stringify({ user: this.user, access, refresh, skewMs: this.skewMs }));
    this.schedule();
  }

  /** Refreshes a little before expiry: a quarter of the lifetime early, at most a minute. */
  schedule() {
    clearTimeout(this.timer);
    const { iat, exp } = jwtPayload(this.access ?? "");
    const lifetime = iat && exp ? (exp - iat) * 1000 : 300_000;
    const margin = Math.min(60_000, lifetime / 4);
    const wait = Math.max(0, this.accessExpiresIn() - margin);
    this.timer = setTimeout(() => {
      // Offline or a server error: try again soon; a 401 has ended the session already.
      this.refresh().catch(() => { if (this.active) this.timer = setTimeout(() => this.schedule(), 5000); });
    }, wait);
  }

  end(reason, { announce = true } = {}) {
    clearTimeout(this.timer);
    const sid = this.sid;
    if (sid) {
      try { localStorage.removeItem(ROTATED_KEY + sid); } catch { /* storage off */ }
      if (announce) channel?.postMessage({ sid, ended: true });
    }
    this.user = null;
    this.access = null;
    this.refreshToken = null;
    sessionStorage.removeItem(STORE_KEY);
    this.dispatchEvent(new CustomEvent("ended", { detail: reason }));
  }
}

function readJSON(storage, key) {
  try {
    return JSON.parse(storage.getItem(key) ?? "null");
  } catch {
    return null;
  }
}
