import { describe, expect, it, vi } from "vitest";
import { ApiClient, ApiError, SESSION_HEADER, errorFromBody } from "./api";

type Call = { url: string; method: string; headers: Record<string, string>; body?: unknown };

function json(status: number, body: unknown): Response {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

/** A fake gateway: `routes` answers by "METHOD path" (a function sees the call), recording calls. */
function fakeFetch(routes: Record<string, (call: Call) => Response | Promise<Response>>) {
  const calls: Call[] = [];
  const fn = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    const path = url.replace(/^https?:\/\/[^/]+/, "").replace(/^\/api\/v1/, "");
    const call: Call = {
      url,
      method: init?.method ?? "GET",
      headers: { ...(init?.headers as Record<string, string>) },
      body: typeof init?.body === "string" ? JSON.parse(init.body) : init?.body,
    };
    calls.push(call);
    const handler = routes[`${call.method} ${path}`];
    if (!handler) return json(404, { error: { code: "not_found", message: `no route ${path}` } });
    return handler(call);
  });
  return { fetch: fn as unknown as typeof fetch, calls };
}

const noLock = <T,>(_name: string, fn: () => Promise<T>) => fn();

function client(routes: Parameters<typeof fakeFetch>[0], onSignedOut = vi.fn()) {
  const fake = fakeFetch(routes);
  const api = new ApiClient({ baseUrl: "http://gw", fetch: fake.fetch, lock: noLock, onSignedOut });
  return { api, calls: fake.calls, onSignedOut };
}

const login = {
  "POST /auth/login": () => json(200, { access_token: "access-1", expires_in: 900, token_type: "bearer" }),
};

describe("error shape", () => {
  it("surfaces the platform's {error: {code, message}}", async () => {
    const { api } = client({
      ...login,
      "POST /models": () => json(409, { error: { code: "conflict", message: "a model named iris already exists" } }),
    });
    await api.login("a@example.com", "pw");
    const err = await api.post("/models", { name: "iris" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 409, code: "conflict", message: "a model named iris already exists" });
  });

  it("surfaces a runtime's {error: '...'} and validation details", () => {
    expect(errorFromBody(422, { error: "expected 4 features, got 2" })).toMatchObject({
      status: 422,
      message: "expected 4 features, got 2",
    });
    expect(errorFromBody(422, { detail: [{ msg: "field required" }, { msg: "too short" }] }).message).toBe(
      "field required; too short",
    );
  });

  it("never shows an HTML error page, and names a network failure", async () => {
    expect(errorFromBody(502, "<html><body>Bad gateway</body></html>").message).toMatch(/server had a problem/);
    const api = new ApiClient({
      baseUrl: "http://gw",
      lock: noLock,
      fetch: (async () => {
        throw new TypeError("Failed to fetch");
      }) as unknown as typeof fetch,
    });
    await expect(api.request("GET", "/models", { auth: false })).rejects.toMatchObject({ status: 0, code: "network_error" });
  });

  it("logs in through the cookie session: header sent, access token kept in memory only", async () => {
    const { api, calls } = client({ ...login, "GET /auth/me": () => json(200, { id: "u1" }) });
    await api.login("a@example.com", "pw");
    expect(calls[0]?.headers[SESSION_HEADER]).toBe("cookie");
    await api.get("/auth/me");
    expect(calls[1]?.headers.authorization).toBe("Bearer access-1");
  });
});

describe("401 handling", () => {
  it("refreshes once and retries the request with the new token", async () => {
    let tokenInUse = "access-1";
    const { api, calls, onSignedOut } = client({
      ...login,
      "POST /auth/refresh": () => {
        tokenInUse = "access-2";
        return json(200, { access_token: "access-2", expires_in: 900 });
      },
      "GET /models": (call) =>
        call.headers.authorization === `Bearer ${tokenInUse}` && tokenInUse === "access-2"
          ? json(200, { items: [], total: 0, limit: 20, offset: 0 })
          : json(401, { error: { code: "unauthorized", message: "invalid or expired credentials" } }),
    });
    await api.login("a@example.com", "pw");
    const page = await api.get<{ total: number }>("/models");
    expect(page.total).toBe(0);
    const paths = calls.map((c) => `${c.method} ${c.url.replace("http://gw/api/v1", "")}`);
    expect(paths).toEqual(["POST /auth/login", "GET /models", "POST /auth/refresh", "GET /models"]);
    expect(calls[2]?.headers[SESSION_HEADER]).toBe("cookie");
    expect(calls[3]?.headers.authorization).toBe("Bearer access-2");
    expect(onSignedOut).not.toHaveBeenCalled();
  });

  it("opens a stream with the token in the Authorization header, refreshing once on 401", async () => {
    let tokenInUse = "access-1";
    const { api, calls } = client({
      ...login,
      "POST /auth/refresh": () => {
        tokenInUse = "access-2";
        return json(200, { access_token: "access-2", expires_in: 900 });
      },
      "GET /deployments/d1/logs?follow=true": (call) =>
        call.headers.authorization === "Bearer access-2" && tokenInUse === "access-2"
          ? new Response("event: log\ndata: {}\n\n", { status: 200, headers: { "content-type": "text/event-stream" } })
          : json(401, { error: { code: "unauthorized", message: "expired" } }),
      "GET /deployments/other/logs": () => json(404, { error: { code: "not_found", message: "deployment not found" } }),
    });
    await api.login("a@example.com", "pw");
    const response = await api.stream("/deployments/d1/logs?follow=true");
    expect(await response.text()).toContain("event: log");
    const streamCalls = calls.filter((c) => c.url.includes("/logs"));
    expect(streamCalls.map((c) => c.headers.accept)).toEqual(["text/event-stream", "text/event-stream"]);
    expect(streamCalls[1]?.url).not.toContain("access");
    await expect(api.stream("/deployments/other/logs")).rejects.toMatchObject({ status: 404, message: "deployment not found" });
  });

  it("shares one refresh between concurrent requests", async () => {
    let refreshes = 0;
    let current = "access-1";
    const { api } = client({
      ...login,
      "POST /auth/refresh": async () => {
        refreshes += 1;
        await new Promise((r) => setTimeout(r, 10));
        current = "access-2";
        return json(200, { access_token: "access-2", expires_in: 900 });
      },
      "GET /a": (c) => (c.headers.authorization === `Bearer ${current}` && current === "access-2" ? json(200, { ok: "a" }) : json(401, {})),
      "GET /b": (c) => (c.headers.authorization === `Bearer ${current}` && current === "access-2" ? json(200, { ok: "b" }) : json(401, {})),
    });
    await api.login("a@example.com", "pw");
    const results = await Promise.all([api.get("/a"), api.get("/b")]);
    expect(results).toEqual([{ ok: "a" }, { ok: "b" }]);
    expect(refreshes).toBe(1);
  });

  it("does not loop: a second 401 after the refresh ends the session", async () => {
    const { api, calls, onSignedOut } = client({
      ...login,
      "POST /auth/refresh": () => json(200, { access_token: "access-2", expires_in: 900 }),
      "GET /models": () => json(401, { error: { code: "unauthorized", message: "nope" } }),
    });
    await api.login("a@example.com", "pw");
    await expect(api.get("/models")).rejects.toMatchObject({ status: 401 });
    expect(calls.filter((c) => c.url.endsWith("/auth/refresh"))).toHaveLength(1);
    expect(onSignedOut).toHaveBeenCalledTimes(1);
    expect(api.signedIn).toBe(false);
  });

  it("logs the user out when the refresh fails", async () => {
    const { api, calls, onSignedOut } = client({
      ...login,
      "POST /auth/refresh": () => json(401, { error: { code: "unauthorized", message: "refresh token reused" } }),
      "GET /models": () => json(401, { error: { code: "unauthorized", message: "expired" } }),
    });
    await api.login("a@example.com", "pw");
    const err = await api.get("/models").catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 401, code: "session_expired" });
    expect(onSignedOut).toHaveBeenCalledTimes(1);
    expect(api.signedIn).toBe(false);
    expect(api.token).toBeNull();
    // no retry of the original request after a failed refresh
    expect(calls.filter((c) => c.url.endsWith("/models"))).toHaveLength(1);
  });

  it("never refreshes for a public call such as a wrong password", async () => {
    const { api, calls, onSignedOut } = client({
      "POST /auth/login": () => json(401, { error: { code: "unauthorized", message: "invalid email or password" } }),
    });
    await expect(api.login("a@example.com", "bad")).rejects.toMatchObject({ message: "invalid email or password" });
    expect(calls).toHaveLength(1);
    expect(onSignedOut).not.toHaveBeenCalled();
  });
});

describe("renewal", () => {
  it("renews the access token a minute before it expires", async () => {
    vi.useFakeTimers();
    try {
      let n = 1;
      const { api, calls } = client({
        ...login,
        "POST /auth/refresh": () => json(200, { access_token: `access-${++n}`, expires_in: 900 }),
      });
      await api.login("a@example.com", "pw");
      await vi.advanceTimersByTimeAsync(839_000);
      expect(calls.filter((c) => c.url.endsWith("/auth/refresh"))).toHaveLength(0);
      await vi.advanceTimersByTimeAsync(2_000);
      expect(calls.filter((c) => c.url.endsWith("/auth/refresh"))).toHaveLength(1);
      expect(api.token).toBe("access-2");
      await api.logout().catch(() => undefined);
      await vi.advanceTimersByTimeAsync(3_600_000);
      expect(calls.filter((c) => c.url.endsWith("/auth/refresh"))).toHaveLength(1);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("logout", () => {
  it("asks the gateway to end the cookie session and forgets the token", async () => {
    const { api, calls, onSignedOut } = client({ ...login, "POST /auth/logout": () => new Response(null, { status: 204 }) });
    await api.login("a@example.com", "pw");
    await api.logout();
    expect(calls[1]?.headers[SESSION_HEADER]).toBe("cookie");
    expect(api.token).toBeNull();
    expect(onSignedOut).toHaveBeenCalledTimes(1);
  });
});
