// The REST side of API.md and the token lifecycle: login, rotation before expiry, logout.
// Tokens live in sessionStorage: a reload keeps the session, a new tab or browser does not.

const STORE_KEY = "chat-es.session";

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
        const data = await request("POST", "/api/token/refresh/", { body: { refresh: this.refreshToken } });
        this.store(data.access, data.refresh);
        this.refreshCount += 1;
        this.dispatchEvent(new Event("tokens"));
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

  end(reason) {
    clearTimeout(this.timer);
    this.user = null;
    this.access = null;
    this.refreshToken = null;
    sessionStorage.removeItem(STORE_KEY);
    this.dispatchEvent(new CustomEvent("ended", { detail: reason }));
  }
}
