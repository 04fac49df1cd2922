// The dashboard's client for the gateway's /api/v1.
//
// Token strategy (see README): the access token lives only in this object's memory; the refresh
// token lives in an httpOnly, SameSite=Strict cookie scoped to /api/v1/auth that the gateway
// sets when a request carries `X-KubeServe-Session: cookie`. A 401 triggers one refresh (shared
// by every request waiting on it, and serialised across tabs with the Web Locks API so two tabs
// never present the same rotating token) and one retry; a failed refresh signs the user out.

export const SESSION_HEADER = "X-KubeServe-Session";

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: unknown;

  constructor(status: number, code: string, message: string, details?: unknown) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

function statusMessage(status: number): string {
  if (status === 0) return "The server could not be reached. Check your connection and retry.";
  if (status === 413) return "The file is too large for this server.";
  if (status === 429) return "Too many requests; wait a moment and retry.";
  if (status >= 500) return `The server had a problem (HTTP ${status}). Retry in a moment.`;
  return `Request failed (HTTP ${status}).`;
}

/** The readable error carried by a response body: `{"error": {"code", "message"}}` from the
 * platform, `{"error": "..."}` from a model runtime, FastAPI's `{"detail": ...}` otherwise. */
export function errorFromBody(status: number, body: unknown): ApiError {
  if (body && typeof body === "object") {
    const record = body as Record<string, unknown>;
    const error = record.error;
    if (error && typeof error === "object") {
      const e = error as Record<string, unknown>;
      const message = typeof e.message === "string" && e.message ? e.message : statusMessage(status);
      const code = typeof e.code === "string" ? e.code : `http_${status}`;
      return new ApiError(status, code, message, e.details);
    }
    if (typeof error === "string" && error) return new ApiError(status, `http_${status}`, error);
    const detail = record.detail;
    if (typeof detail === "string") return new ApiError(status, `http_${status}`, detail);
    if (Array.isArray(detail)) {
      const parts = detail
        .map((d) => (d && typeof d === "object" ? String((d as Record<string, unknown>).msg ?? "") : ""))
        .filter(Boolean);
      if (parts.length) return new ApiError(status, "validation_error", parts.join("; "), detail);
    }
  }
  if (typeof body === "string" && body.trim() && body.length < 300 && !body.trimStart().startsWith("<")) {
    return new ApiError(status, `http_${status}`, body.trim());
  }
  return new ApiError(status, `http_${status}`, statusMessage(status));
}

export async function errorFromResponse(response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => "");
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: keep the text
  }
  return errorFromBody(response.status, body);
}

export type LockFn = <T>(name: string, fn: () => Promise<T>) => Promise<T>;

/** Web Locks when the browser has them (every current one), else run directly. */
export const browserLock: LockFn = async (name, fn) => {
  const locks = typeof navigator !== "undefined" ? navigator.locks : undefined;
  if (locks && typeof locks.request === "function") {
    return (await locks.request(name, fn)) as Awaited<ReturnType<typeof fn>>;
  }
  return fn();
};

export interface ApiClientOptions {
  baseUrl?: string;
  fetch?: typeof fetch;
  lock?: LockFn;
  /** Called once whenever the session ends (failed refresh or logout). */
  onSignedOut?: () => void;
}

export interface RequestOptions {
  json?: unknown;
  body?: BodyInit;
  headers?: Record<string, string>;
  /** Send the access token and refresh on 401 (default true). */
  auth?: boolean;
  signal?: AbortSignal;
}

export interface LoginResult {
  access_token: string;
  expires_in: number;
}

export class ApiClient {
  readonly baseUrl: string;
  private readonly fetchFn: typeof fetch;
  private readonly lock: LockFn;
  private readonly onSignedOut?: () => void;
  private accessToken: string | null = null;
  private refreshing: Promise<boolean> | null = null;
  private renewTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(options: ApiClientOptions = {}) {
    this.baseUrl = (options.baseUrl ?? "").replace(/\/$/, "");
    const f = options.fetch ?? globalThis.fetch;
    this.fetchFn = (input, init) => f(input, init);
    this.lock = options.lock ?? browserLock;
    this.onSignedOut = options.onSignedOut;
  }

  get token(): string | null {
    return this.accessToken;
  }

  get signedIn(): boolean {
    return this.accessToken !== null;
  }

  url(path: string): string {
    return `${this.baseUrl}/api/v1${path}`;
  }

  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const auth = options.auth ?? true;
    let response = await this.send(method, path, options, auth);
    if (response.status === 401 && auth) {
      const sentWith = this.accessToken;
      const renewed = await this.refresh(sentWith);
      if (!renewed) {
        throw new ApiError(401, "session_expired", "Your session has ended. Please log in again.");
      }
      response = await this.send(method, path, options, auth);
      if (response.status === 401) {
        this.endSession();
        throw await errorFromResponse(response);
      }
    }
    if (!response.ok) throw await errorFromResponse(response);
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** The raw response of a streamed GET (e.g. the logs route's SSE): authenticated like
   * `request` (one refresh and retry on 401), an ApiError when it is not 2xx. The caller reads
   * `body` and aborts with `signal` to stop. */
  async stream(path: string, options: { accept?: string; signal?: AbortSignal } = {}): Promise<Response> {
    const opts: RequestOptions = { headers: { accept: options.accept ?? "text/event-stream" }, signal: options.signal };
    let response = await this.send("GET", path, opts, true);
    if (response.status === 401) {
      if (!(await this.refresh(this.accessToken))) {
        throw new ApiError(401, "session_expired", "Your session has ended. Please log in again.");
      }
      response = await this.send("GET", path, opts, true);
    }
    if (!response.ok) throw await errorFromResponse(response);
    return response;
  }

  private async send(method: string, path: string, options: RequestOptions, auth: boolean): Promise<Response> {
    const headers: Record<string, string> = { accept: "application/json", ...options.headers };
    let body = options.body;
    if (options.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(options.json);
    }
    if (auth && this.accessToken) headers.authorization = `Bearer ${this.accessToken}`;
    try {
      return await this.fetchFn(this.url(path), {
        method,
        headers,
        body,
        credentials: "same-origin",
        signal: options.signal,
      });
    } catch (err) {
      if (err instanceof DOMException && err.name === "AbortError") throw err;
      throw new ApiError(0, "network_error", statusMessage(0));
    }
  }

  /** Exchange the refresh cookie for a new access token. Shared by concurrent callers; when
   * `staleToken` is given and another caller already replaced it, no new refresh is made. */
  async refresh(staleToken?: string | null): Promise<boolean> {
    if (staleToken !== undefined && this.accessToken !== null && this.accessToken !== staleToken) {
      return true;
    }
    if (!this.refreshing) {
      this.refreshing = this.lock("kubeserve-refresh", () => this.doRefresh()).finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  private async doRefresh(): Promise<boolean> {
    let response: Response;
    try {
      response = await this.fetchFn(this.url("/auth/refresh"), {
        method: "POST",
        headers: { [SESSION_HEADER]: "cookie", accept: "application/json" },
        credentials: "same-origin",
      });
    } catch {
      this.endSession();
      return false;
    }
    if (!response.ok) {
      this.endSession();
      return false;
    }
    this.accept((await response.json()) as LoginResult);
    return true;
  }

  /** Keep the new access token and renew it a minute before it expires, so an open page
   * rarely meets a 401 (the 401 path stays the safety net, e.g. after a laptop sleeps). */
  private accept(data: LoginResult): void {
    this.accessToken = data.access_token;
    if (this.renewTimer) clearTimeout(this.renewTimer);
    const seconds = Number(data.expires_in);
    if (Number.isFinite(seconds) && seconds > 90) {
      const token = data.access_token;
      this.renewTimer = setTimeout(() => {
        this.renewTimer = null;
        if (this.accessToken === token) void this.refresh();
      }, (seconds - 60) * 1000);
    }
  }

  /** On page load: is there a session (a refresh cookie)? Quietly false when not. */
  async restore(): Promise<boolean> {
    if (this.accessToken) return true;
    return this.refresh();
  }

  async login(email: string, password: string): Promise<void> {
    const data = await this.request<LoginResult>("POST", "/auth/login", {
      json: { email, password },
      headers: { [SESSION_HEADER]: "cookie" },
      auth: false,
    });
    this.accept(data);
  }

  async register(email: string, password: string): Promise<void> {
    await this.request("POST", "/auth/register", { json: { email, password }, auth: false });
  }

  async logout(): Promise<void> {
    try {
      await this.fetchFn(this.url("/auth/logout"), {
        method: "POST",
        headers: { [SESSION_HEADER]: "cookie" },
        credentials: "same-origin",
      });
    } catch {
      // the cookie is cleared server-side when the request arrives; nothing else to do
    }
    this.endSession();
  }

  private endSession(): void {
    this.accessToken = null;
    if (this.renewTimer) clearTimeout(this.renewTimer);
    this.renewTimer = null;
    this.onSignedOut?.();
  }

  get<T>(path: string, signal?: AbortSignal): Promise<T> {
    return this.request<T>("GET", path, { signal });
  }
  post<T>(path: string, json?: unknown): Promise<T> {
    return this.request<T>("POST", path, { json: json ?? {} });
  }
  patch<T>(path: string, json: unknown): Promise<T> {
    return this.request<T>("PATCH", path, { json });
  }
  delete<T = void>(path: string): Promise<T> {
    return this.request<T>("DELETE", path);
  }

  /** Multipart upload with progress (fetch cannot report upload progress; XHR can). One
   * refresh-and-retry on 401, like every other request. */
  async upload<T>(path: string, form: FormData, onProgress?: (loaded: number, total: number) => void): Promise<T> {
    const attempt = () =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        const xhr = new XMLHttpRequest();
        xhr.open("POST", this.url(path));
        xhr.setRequestHeader("accept", "application/json");
        if (this.accessToken) xhr.setRequestHeader("authorization", `Bearer ${this.accessToken}`);
        xhr.upload.onprogress = (e) => {
          if (e.lengthComputable) onProgress?.(e.loaded, e.total);
        };
        xhr.onload = () => resolve({ status: xhr.status, text: xhr.responseText });
        xhr.onerror = () => reject(new ApiError(0, "network_error", statusMessage(0)));
        xhr.onabort = () => reject(new ApiError(0, "aborted", "The upload was cancelled."));
        xhr.send(form);
      });
    let result = await attempt();
    if (result.status === 401) {
      if (!(await this.refresh(this.accessToken))) {
        throw new ApiError(401, "session_expired", "Your session has ended. Please log in again.");
      }
      result = await attempt();
    }
    let body: unknown = result.text;
    try {
      body = result.text ? JSON.parse(result.text) : null;
    } catch {
      // keep text
    }
    if (result.status < 200 || result.status >= 300) throw errorFromBody(result.status, body);
    return body as T;
  }
}

export function describeError(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  if (err instanceof Error) return err.message;
  return "Something went wrong.";
}
