// End-to-end test of the dashboard in a real browser (playwright-core driving Debian's
// Chromium) against the embedded platform, which this script starts and stops.
//
//   npm run build && npm run e2e
//
// Env: CHROMIUM (default /usr/bin/chromium), E2E_HEADED=1, E2E_KEEP=1 (keep the platform's home).
// Needs the synced uv workspace of this repository (`make install`).

import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const frontend = resolve(here, "..");
const repo = resolve(frontend, "..");
const shots = join(here, "screenshots");
const out = join(frontend, "out");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const STEP_TIMEOUT = 60_000;
// `uv`, or `python3 -m uv` where only the module is installed (as the Makefile allows).
const UV = spawnSync("uv", ["--version"]).status === 0 ? ["uv"] : ["python3", "-m", "uv"];

let step = 0;
const log = (msg) => console.log(`[e2e ${new Date().toISOString().slice(11, 19)}] ${msg}`);

function fail(msg) {
  throw new Error(msg);
}

async function freePort() {
  return new Promise((ok, ko) => {
    const srv = createServer();
    srv.once("error", ko);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

async function waitFor(url, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  fail(`${url} did not answer within ${timeoutMs} ms`);
}

/** Every process below `root` (model replicas and the warm pool start their own sessions, so
 * stopping the platform's process group does not reach them). Linux /proc. */
function descendants(root) {
  const parent = new Map();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      parent.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // gone meanwhile
    }
  }
  const found = new Set([root]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, ppid] of parent) {
      if (!found.has(pid) && found.has(ppid)) {
        found.add(pid);
        grew = true;
      }
    }
  }
  found.delete(root);
  return [...found];
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function shot(page, name) {
  step += 1;
  const file = join(shots, `${String(step).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  log(`screenshot ${file}`);
}

async function main() {
  if (!existsSync(join(out, "index.html"))) fail("frontend/out is missing: run `npm run build` first");
  if (!existsSync(CHROMIUM)) fail(`no Chromium at ${CHROMIUM}: apt-get install -y chromium`);
  rmSync(shots, { recursive: true, force: true });
  mkdirSync(shots, { recursive: true });

  const home = mkdtempSync(join(tmpdir(), "kubeserve-e2e-"));
  const model = join(home, "iris.joblib");
  log("training the iris model");
  const train = spawnSync(UV[0], [...UV.slice(1), "run", "--no-sync", "python", join(here, "train_iris.py"), model], { cwd: repo, stdio: "inherit" });
  if (train.status !== 0) fail("training the iris model failed");

  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  log(`starting the embedded platform on ${base}`);
  const platform = spawn(UV[0], [...UV.slice(1), "run", "--no-sync", "kubeserve", "up", "--port", String(port), "--home", join(home, "ks")], {
    cwd: repo,
    detached: true, // its own process group, stopped as a whole below
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, KUBESERVE_DASHBOARD_DIR: out, KUBESERVE_LOG_JSON: "false" },
  });
  const platformLog = [];
  platform.stdout.on("data", (d) => platformLog.push(d.toString()));
  platform.stderr.on("data", (d) => platformLog.push(d.toString()));

  let browser;
  let ok = false;
  try {
    await waitFor(`${base}/readyz`, 90_000);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: !process.env.E2E_HEADED,
      args: [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
      ].filter((a) => !(process.env.E2E_HEADED && a === "--headless")),
    });
    await scenario(browser, base, model);
    ok = true;
  } finally {
    await browser?.close().catch(() => {});
    const children = descendants(platform.pid);
    try {
      process.kill(-platform.pid, "SIGTERM");
    } catch {
      // already gone
    }
    await new Promise((r) => {
      const t = setTimeout(() => {
        try { process.kill(-platform.pid, "SIGKILL"); } catch { /* gone */ }
        r();
      }, 15_000);
      platform.once("exit", () => { clearTimeout(t); r(); });
    });
    // Whatever the platform started and left behind (e.g. replicas kept for a restart).
    const left = children.filter(alive);
    for (const pid of left) {
      try { process.kill(pid, "SIGTERM"); } catch { /* gone */ }
    }
    if (left.length) log(`stopped ${left.length} process(es) the platform left running`);
    if (!ok) {
      const tail = platformLog.join("").split("\n").slice(-60).join("\n");
      writeFileSync(join(shots, "platform.log"), platformLog.join(""));
      console.error(`--- platform log (tail; full log in e2e/screenshots/platform.log) ---\n${tail}`);
    }
    if (!process.env.E2E_KEEP) rmSync(home, { recursive: true, force: true });
  }
}

async function newContext(browser, base) {
  const context = await browser.newContext({ baseURL: base, viewport: { width: 1280, height: 900 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  context.setDefaultTimeout(STEP_TIMEOUT);
  return context;
}

async function expectText(locator, re, what) {
  const deadline = Date.now() + STEP_TIMEOUT;
  let last = "";
  while (Date.now() < deadline) {
    last = (await locator.textContent().catch(() => "")) ?? "";
    if (re.test(last)) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  fail(`${what}: expected ${re}, last saw ${JSON.stringify(last)}`);
}

async function scenario(browser, base, modelPath) {
  const stamp = Date.now().toString(36);
  const alice = { email: `alice-${stamp}@example.com`, password: "correct horse battery staple" };
  const bob = { email: `bob-${stamp}@example.com`, password: "another long passphrase" };

  const context = await newContext(browser, base);
  const page = await context.newPage();
  const consoleErrors = [];
  page.on("pageerror", (err) => consoleErrors.push(String(err)));

  // -- register (which signs in), then log out and log in again ----------------------------
  log("register");
  await page.goto("/");
  await page.waitForURL(/\/login\/$/);
  await page.getByRole("link", { name: "Create one" }).click();
  await page.waitForURL(/\/register\/$/);
  await page.getByLabel("Email").fill(alice.email);
  await page.getByLabel("Password").fill(alice.password);
  await shot(page, "register");
  await page.getByRole("button", { name: "Create account" }).click();
  await page.waitForURL(/\/models\/$/);
  await page.getByText("No models yet").waitFor();
  await shot(page, "models-empty");

  log("log out and log in");
  await page.getByRole("button", { name: "Log out" }).click();
  await page.waitForURL(/\/login\//);
  await page.getByLabel("Email").fill(alice.email);
  await page.getByLabel("Password").fill("wrong password");
  await page.getByRole("button", { name: "Log in" }).click();
  // (Next's route announcer is a role=alert too: wait for ours, by its text.)
  await expectText(page.getByRole("alert").filter({ hasText: /password/i }), /invalid|incorrect|wrong/i, "a readable login error");
  await shot(page, "login-error");
  await page.getByLabel("Password").fill(alice.password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL(/\/models\/$/);

  // A reload keeps the session: the refresh cookie gives a new access token.
  await page.reload();
  await page.getByText("No models yet").waitFor();
  const cookies = await context.cookies();
  const refresh = cookies.find((c) => c.name === "ks_refresh");
  if (!refresh || !refresh.httpOnly || refresh.sameSite !== "Strict") fail(`refresh cookie not httpOnly/Strict: ${JSON.stringify(refresh)}`);
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
  if (/eyJ|ksr_/.test(stored)) fail("a token was written to web storage");
  await page.locator('[data-testid="live-indicator"][data-live="true"]').waitFor();

  // -- upload by drag and drop; the badge reaches Ready without a reload ------------------
  log("upload");
  await page.getByRole("link", { name: "Upload" }).first().click();
  await page.waitForURL(/\/upload\/$/);
  await page.getByLabel("Name").fill("iris");
  await page.getByLabel("Framework").selectOption("sklearn");
  await page.getByLabel("Description (optional)").fill("Iris flowers, logistic regression");
  const bytes = readFileSync(modelPath).toString("base64");
  const transfer = await page.evaluateHandle(({ b64, name }) => {
    const raw = atob(b64);
    const data = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i += 1) data[i] = raw.charCodeAt(i);
    const dt = new DataTransfer();
    dt.items.add(new File([data], name, { type: "application/octet-stream" }));
    return dt;
  }, { b64: bytes, name: "model.joblib" });
  const dropzone = page.getByTestId("dropzone");
  await dropzone.dispatchEvent("dragenter", { dataTransfer: transfer });
  await dropzone.dispatchEvent("dragover", { dataTransfer: transfer });
  await dropzone.dispatchEvent("drop", { dataTransfer: transfer });
  await page.getByTestId("file-model").waitFor();
  await shot(page, "upload-dropped");
  let navigations = 0;
  page.on("framenavigated", (frame) => { if (frame === page.mainFrame()) navigations += 1; });
  await page.getByRole("button", { name: "Upload", exact: true }).click();
  const progress = page.getByTestId("build-progress");
  await progress.waitFor();
  await shot(page, "build-started");
  await page.locator('[data-testid="build-progress"][data-status="Ready"]').waitFor({ timeout: 120_000 });
  if (navigations !== 0) fail(`the page navigated ${navigations} time(s) while waiting for Ready`);
  await page.getByTestId("build-result").waitFor();
  await shot(page, "build-ready");

  log("model hub");
  await page.getByRole("link", { name: "Models" }).first().click();
  const row = page.locator('[data-testid="model-row"][data-model="iris"]');
  await row.locator('[data-status="Ready"]').waitFor();
  await shot(page, "models-hub");
  await row.getByRole("link").click();
  await page.waitForURL(/\/models\/detail\/\?id=/);
  await page.locator('[data-testid="version"][data-version="v1"]').waitFor();
  await shot(page, "model-detail");

  // -- deploy, live URL, playground ------------------------------------------------------
  log("deploy");
  await page.getByRole("button", { name: "Deploy" }).click();
  await page.waitForURL(/\/deployments\/detail\/\?id=/);
  const deploymentId = new URL(page.url()).searchParams.get("id");
  await page.locator('h1 ~ * [data-status="Running"], [data-status="Running"]').first().waitFor({ timeout: 120_000 });
  const url = await expectText(page.getByTestId("live-url"), new RegExp(`/api/v1/predict/${deploymentId}$`), "live URL");
  log(`live URL ${url}`);
  await shot(page, "deployment");

  log("playground");
  await page.getByRole("button", { name: "Send prediction" }).click();
  await expectText(page.getByTestId("prediction-result"), /^0$/, "iris setosa is class 0");
  await page.getByLabel(/Request body/).fill(JSON.stringify({ instances: [[6.7, 3.0, 5.2, 2.3]] }));
  await page.getByRole("button", { name: "Send prediction" }).click();
  await expectText(page.getByTestId("prediction-result"), /^2$/, "iris virginica is class 2");
  await page.getByLabel(/Request body/).fill(JSON.stringify({ instances: [[1, 2]] }));
  await page.getByRole("button", { name: "Send prediction" }).click();
  await expectText(page.getByRole("alert").filter({ hasText: "prediction failed" }), /features/, "a readable runtime error");
  await page.getByRole("button", { name: "Reset example" }).click();
  await page.getByRole("button", { name: "Send prediction" }).click();
  await expectText(page.getByTestId("prediction-result"), /^0$/, "class 0 again");
  await page.getByRole("button", { name: "Python · OIP V2" }).click();
  await shot(page, "deployment-playground");

  log("logs panel: lines written by the replica, streamed with the bearer token");
  const logs = page.getByTestId("logs");
  await expectText(logs, /Application startup complete|loaded from/, "the replica's startup line in the logs panel");
  await page.getByLabel("Replica", { exact: true }).selectOption({ label: "replica 0" });
  await expectText(logs, /Application startup complete|loaded from/, "replica 0's own lines");
  await page.locator('[data-testid="logs-state"][data-state="streaming"]').waitFor();
  await page.getByLabel("Follow").uncheck();
  await page.locator('[data-testid="logs-state"][data-state="ended"]').waitFor();
  await expectText(logs, /Application startup complete|loaded from/, "the tail without follow");
  await page.getByLabel("Follow").check();
  await shot(page, "deployment-logs");

  log("usage page: one deployment, one replica in use");
  await page.getByRole("link", { name: "Usage" }).first().click();
  await page.waitForURL(/\/usage\/$/);
  await expectText(page.getByTestId("usage-replicas"), /^1 of \d+$/, "1 replica in use");
  const usageRow = page.locator(`[data-testid="usage-row"][data-deployment="${deploymentId}"]`);
  await expectText(usageRow, /1\/1/, "the deployment's 1/1 replicas");
  if ((await page.getByTestId("usage-row").count()) !== 1) fail("the usage page lists more than one deployment");
  await expectText(page.getByTestId("need-new-deployment"), /needs 1 replica/, "what a new deployment needs");
  await shot(page, "usage");
  // Back through the row's link (a client-side navigation: the page's drag-and-drop handle
  // above must survive for the uploads below).
  await usageRow.getByRole("link").click();
  await page.waitForURL(new RegExp(`/deployments/detail/\\?id=${deploymentId}`));

  log("a failing build shows its stage and reason");
  await page.getByRole("link", { name: "model", exact: true }).click();
  await page.waitForURL(/\/models\/detail\/\?id=/);
  await page.getByRole("link", { name: "New version" }).click();
  await page.waitForURL(/\/upload\/\?model=/);
  const broken = await page.evaluateHandle(() => {
    const dt = new DataTransfer();
    dt.items.add(new File([new TextEncoder().encode("this is not a model")], "broken.joblib"));
    dt.items.add(new File([new TextEncoder().encode("numpy\n")], "requirements.txt", { type: "text/plain" }));
    return dt;
  });
  await page.getByTestId("dropzone").dispatchEvent("drop", { dataTransfer: broken });
  await page.getByTestId("file-requirements").waitFor();
  await page.getByRole("button", { name: "Upload", exact: true }).click();
  await page.locator('[data-testid="build-progress"][data-status="Failed"]').waitFor({ timeout: 120_000 });
  await expectText(page.getByTestId("failure"), /Build failed at stage/, "the failure stage");
  await shot(page, "build-failed");

  log("a second good version: roll out, scale, roll back");
  await page.getByRole("button", { name: "Upload another" }).click();
  await page.getByTestId("dropzone").dispatchEvent("drop", { dataTransfer: transfer });
  await page.getByTestId("file-model").waitFor();
  await page.getByRole("button", { name: "Upload", exact: true }).click();
  await page.locator('[data-testid="build-progress"][data-status="Ready"]').waitFor({ timeout: 120_000 });
  await page.goto(`/deployments/detail/?id=${deploymentId}`);
  const summary = page.getByTestId("deployment-summary");
  await expectText(summary, /version v1 · revision 1 · 1\/1 replicas ready/, "v1 serving");
  await page.getByLabel("Serve version").selectOption({ label: "v3" });
  await page.getByRole("button", { name: "Roll out" }).click();
  await expectText(summary, /version v3 · revision 2 · 1\/1 replicas ready/, "v3 rolled out");
  await page.getByLabel("Replicas", { exact: true }).fill("2");
  await page.getByRole("button", { name: "Save scaling" }).click();
  await expectText(summary, /revision 2 · 2\/2 replicas ready/, "scaled to 2");
  await page.getByRole("button", { name: "Roll back" }).click();
  await expectText(summary, /version v1 · revision 3 · \d\/\d replicas ready/, "rolled back to v1");
  await page.locator('[data-status="Running"]').first().waitFor({ timeout: 120_000 });
  await page.getByRole("button", { name: "Send prediction" }).click();
  await expectText(page.getByTestId("prediction-result"), /^0$/, "class 0 after the rollback");
  await shot(page, "deployment-rolled-back");

  log("autoscaling card: save a change, a bad one is the API's 422 inline");
  const scaling = page.getByTestId("scaling-summary");
  await page.getByRole("radio", { name: /Autoscale/ }).check();
  await page.getByLabel("Min replicas", { exact: true }).fill("1");
  await page.getByLabel("Max replicas", { exact: true }).fill("2");
  await page.getByLabel("Target concurrency", { exact: true }).fill("4");
  await page.getByRole("button", { name: "Save scaling" }).click();
  await expectText(scaling, /^autoscaling 1–2 replicas, target 4 in flight/, "autoscaling saved");
  await page.getByTestId("replica-chart").waitFor();
  await page.getByLabel("Min replicas", { exact: true }).fill("3");
  await page.getByLabel("Max replicas", { exact: true }).fill("1");
  await page.getByRole("button", { name: "Save scaling" }).click();
  await expectText(page.getByRole("alert").filter({ hasText: "scaling change was refused" }), /min_replicas \(3\) must not exceed max_replicas \(1\)/, "the API's 422 for min > max");
  await expectText(scaling, /^autoscaling 1–2 replicas/, "the refused change changed nothing");
  await shot(page, "deployment-autoscaling-422");
  await page.getByRole("button", { name: "Discard" }).click();
  await page.getByRole("radio", { name: "Fixed count" }).check();
  await page.getByLabel("Replicas", { exact: true }).fill("1");
  await page.getByRole("button", { name: "Save scaling" }).click();
  await expectText(scaling, /^fixed 1 replica$/, "back to a fixed count");

  log("deployments list");
  await page.getByRole("link", { name: "Deployments" }).first().click();
  await page.getByTestId("deployment-row").first().waitFor();
  await shot(page, "deployments");

  // -- API keys: create (shown once), use it, revoke ----------------------------------------
  log("api keys");
  await page.getByRole("link", { name: "API keys" }).first().click();
  await page.getByText("No API keys").waitFor();
  await page.getByLabel("Name").fill("e2e backend");
  await page.getByRole("button", { name: "Create key" }).click();
  const secret = await expectText(page.getByTestId("new-key-secret"), /^ks_/, "the new key");
  await page.locator('[data-testid="api-key-row"][data-name="e2e backend"]').waitFor();
  await shot(page, "api-key-created");
  const viaKey = await fetch(url, {
    method: "POST",
    headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
    body: JSON.stringify({ instances: [[5.1, 3.5, 1.4, 0.2]] }),
  });
  const viaKeyBody = await viaKey.json();
  if (viaKey.status !== 200 || viaKeyBody.predictions?.[0] !== 0) fail(`the key could not predict: ${viaKey.status} ${JSON.stringify(viaKeyBody)}`);
  await page.getByRole("button", { name: "Done" }).click();
  await page.getByRole("button", { name: "Revoke" }).click();
  await page.getByRole("dialog").waitFor();
  await shot(page, "api-key-revoke-confirm");
  await page.getByRole("button", { name: "Revoke key" }).click();
  await page.getByText("No API keys").waitFor();
  await shot(page, "api-key-revoked");
  const deadline = Date.now() + 15_000;
  for (;;) {
    const r = await fetch(url, { method: "POST", headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" }, body: "{}" });
    if (r.status === 401) break;
    if (Date.now() > deadline) fail(`a revoked key still answers ${r.status}`);
    await new Promise((res) => setTimeout(res, 500));
  }

  // -- delete the deployment (confirmed) -----------------------------------------------------
  log("delete the deployment");
  await page.goto(`/deployments/detail/?id=${deploymentId}`);
  await page.getByRole("button", { name: "Delete deployment" }).click();
  await page.getByRole("dialog").waitFor();
  await shot(page, "deployment-delete-confirm");
  await page.getByRole("dialog").getByRole("button", { name: "Delete", exact: true }).click();
  await page.waitForURL(/\/deployments\/$/);
  await page.getByText("Nothing deployed yet").waitFor();
  await shot(page, "deployments-after-delete");

  // -- another user sees none of it -------------------------------------------------------
  log("second user");
  const other = await newContext(browser, base);
  const page2 = await other.newPage();
  await page2.goto("/register/");
  await page2.getByLabel("Email").fill(bob.email);
  await page2.getByLabel("Password").fill(bob.password);
  await page2.getByRole("button", { name: "Create account" }).click();
  await page2.waitForURL(/\/models\/$/);
  await page2.getByText("No models yet").waitFor();
  if (await page2.locator('[data-testid="model-row"]').count()) fail("the second user sees models");
  await shot(page2, "second-user-models");
  await page2.goto(`/deployments/detail/?id=${deploymentId}`);
  await expectText(page2.getByRole("alert").filter({ hasText: "Could not load" }), /not found/i, "another user's deployment is a 404");
  await shot(page2, "second-user-no-access");
  await page2.goto("/deployments/");
  await page2.getByText("Nothing deployed yet").waitFor();
  await other.close();

  // -- a phone-sized layout ----------------------------------------------------------------
  await page.setViewportSize({ width: 390, height: 844 });
  await page.getByRole("link", { name: "Models" }).first().click();
  await page.locator('[data-testid="model-row"]').first().waitFor();
  await shot(page, "models-phone");
  await page.setViewportSize({ width: 1280, height: 900 });

  // -- log out: the session is gone, protected pages send to login -----------------------
  log("log out");
  await page.getByRole("button", { name: "Log out" }).click();
  await page.waitForURL(/\/login\//);
  await shot(page, "logged-out");
  await page.goto("/models/");
  await page.waitForURL(/\/login\/\?next=/);
  if ((await context.cookies()).some((c) => c.name === "ks_refresh")) fail("the refresh cookie survived logout");
  if (consoleErrors.length) fail(`page errors: ${consoleErrors.join("; ")}`);
  await context.close();
  log("all steps passed");
}

main().catch((err) => {
  console.error(`[e2e] FAILED: ${err?.stack ?? err}`);
  process.exit(1);
});
