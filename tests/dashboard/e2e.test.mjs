// The approvers' dashboard end to end, in headless Chromium (Debian's /usr/bin/chromium
// through playwright-core): a real `ascend serve`, a real moto server, and a real agent
// (tests/dashboard/agent.py: ascend_boto3 over boto3) blocked in its own process until a
// person clicks. Environment: ASCEND_BIN (the binary), PYTHON (a python with ascend_boto3
// and moto), CHROMIUM (default /usr/bin/chromium), ASCEND_SCREENSHOTS (a directory: save
// a screenshot of each page there).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { mkdtempSync, mkdirSync, openSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, "..", "..");
const ASCEND_BIN = process.env.ASCEND_BIN || join(repo, "target", "debug", "ascend");
const PYTHON = process.env.PYTHON || join(repo, ".venv", "bin", "python");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOTS = process.env.ASCEND_SCREENSHOTS || "";
const WAIT_MS = 30_000;

const tmp = mkdtempSync(join(tmpdir(), "ascend-dashboard-e2e-"));
const children = [];
let base, motoUrl, browser, approverKey, agentKey;
const adminKey = "owkai_admin_" + randomBytes(16).toString("hex");

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

function start(cmd, args, name, env = {}) {
  const log = openSync(join(tmp, `${name}.log`), "a");
  const merged = { ...process.env, ...env };
  for (const unset of ["ASCEND_DATABASE_URL", "ASCEND_LISTEN", "ASCEND_DATA_DIR"]) delete merged[unset];
  const child = spawn(cmd, args, { stdio: ["ignore", log, log], env: merged });
  children.push(child);
  return child;
}

async function waitHttp(url) {
  const deadline = Date.now() + WAIT_MS;
  let last;
  while (Date.now() < deadline) {
    try {
      const r = await fetch(url);
      if (r.ok) return;
      last = r.status;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not come up: ${last}`);
}

async function api(method, path, key, body) {
  const r = await fetch(base + path, {
    method,
    headers: { "X-API-Key": key, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  assert.ok(r.ok, `${method} ${path} -> ${r.status}: ${text}`);
  return JSON.parse(text);
}

/** Runs agent.py; resolves with its last JSON line once it exits. */
function runAgent(agentId, operation, bucket) {
  const env = { AWS_ACCESS_KEY_ID: "testing", AWS_SECRET_ACCESS_KEY: "testing", AWS_DEFAULT_REGION: "us-east-1",
    ASCEND_QUEUE_DIR: join(tmp, `queue-${agentId}`) };
  const child = spawn(PYTHON, [join(here, "agent.py"), base, agentKey, agentId, motoUrl, operation, bucket],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  children.push(child);
  let out = "", err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const done = new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill(); reject(new Error(`agent timed out: ${out} ${err}`)); }, 120_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      const lines = out.trim().split("\n").filter(Boolean);
      if (code !== 0 || lines.length === 0) return reject(new Error(`agent exited ${code}: ${out} ${err}`));
      resolve(JSON.parse(lines[lines.length - 1]));
    });
  });
  return { child, done, exited: () => child.exitCode !== null };
}

async function signIn(key) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const page = await context.newPage();
  await page.goto(base + "/login");
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
  return page;
}

async function shot(page, name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

before(async () => {
  const motoPort = await freePort();
  motoUrl = `http://127.0.0.1:${motoPort}`;
  start(PYTHON, ["-m", "moto.server", "-H", "127.0.0.1", "-p", String(motoPort)], "moto");
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  start(ASCEND_BIN, ["serve", "--listen", `127.0.0.1:${port}`, "--data-dir", join(tmp, "data")], "serve",
    { ASCEND_BOOTSTRAP_KEY: adminKey });
  await waitHttp(base + "/healthz");
  await waitHttp(motoUrl + "/moto-api/");
  approverKey = (await api("POST", "/api/v1/keys", adminKey, { role: "approver", name: "Ann Approver" })).key;
  agentKey = (await api("POST", "/api/v1/keys", adminKey, { role: "agent", name: "e2e agent" })).key;
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
});

after(async () => {
  if (browser) await browser.close();
  for (const c of children) if (c.exitCode === null) c.kill();
});

test("a governed boto3 call blocks until an approver clicks Approve, then completes", async () => {
  const page = await signIn(approverKey);
  await page.goto(base + "/approvals");
  await page.locator("#live[data-state=on]").waitFor({ timeout: WAIT_MS });
  const agent = runAgent("e2e-approve", "delete_bucket", "e2e-approve-bucket");
  // The request appears without a reload (server-sent events).
  const card = page.locator("article.card", { hasText: "e2e-approve" });
  await card.waitFor({ timeout: WAIT_MS });
  assert.equal(agent.exited(), false, "the agent waits for a person");
  await assert.doesNotReject(card.getByText("s3.delete_bucket", { exact: true }).waitFor());
  await assert.doesNotReject(card.getByText("e2e-approve-bucket").first().waitFor({ state: "attached" }));
  assert.match(await card.locator(".badge").innerText(), /high · \d+/);
  await shot(page, "approvals");
  await page.setViewportSize({ width: 390, height: 844 });
  await shot(page, "approvals-phone");
  await page.setViewportSize({ width: 1100, height: 800 });
  await card.getByLabel("Comment (optional)").fill("ok for the cleanup");
  await card.getByRole("button", { name: "Approve" }).click();
  const outcome = await agent.done;
  assert.deepEqual(outcome, { outcome: "ran", bucket_exists: false });
  await page.locator(".notice", { hasText: "Approved" }).waitFor();
  await page.context().close();
});

test("Reject shows the approver's reason to the agent", async () => {
  const page = await signIn(approverKey);
  await page.goto(base + "/approvals");
  await page.locator("#live[data-state=on]").waitFor({ timeout: WAIT_MS });
  const agent = runAgent("e2e-reject", "delete_bucket", "e2e-reject-bucket");
  const card = page.locator("article.card", { hasText: "e2e-reject" });
  await card.waitFor({ timeout: WAIT_MS });
  await card.getByLabel("Reason (optional, the agent sees it)").fill("not during the freeze");
  await card.getByRole("button", { name: "Reject" }).click();
  const outcome = await agent.done;
  assert.equal(outcome.outcome, "denied");
  assert.match(outcome.reason, /not during the freeze/);
  assert.equal(outcome.bucket_exists, true);
  await page.context().close();
});

test("Block stops the agent's next call", async () => {
  // The agent is known to the registry once it has called.
  const first = await runAgent("e2e-block", "list_buckets", "none").done;
  assert.equal(first.outcome, "ran");
  const page = await signIn(adminKey);
  await page.goto(base + "/agents");
  const row = page.locator("tr", { hasText: "e2e-block" });
  await row.waitFor({ timeout: WAIT_MS });
  await row.getByLabel("Reason").fill("runaway loop");
  let asked = "";
  page.once("dialog", (d) => { asked = d.message(); d.accept(); });
  await row.getByRole("button", { name: "Block" }).click();
  await page.locator(".notice", { hasText: "Blocked" }).waitFor();
  assert.match(asked, /Block e2e-block\?/);
  await shot(page, "agents");
  const next = await runAgent("e2e-block", "list_buckets", "none").done;
  assert.equal(next.outcome, "denied");
  assert.match(next.reason, /runaway loop/);
  await page.context().close();
});

test("an agent key cannot sign in", async () => {
  const page = await signIn(agentKey);
  const error = page.locator("#login-error");
  await error.waitFor();
  assert.match(await error.innerText(), /Agent keys cannot sign in/);
  await shot(page, "login");
  await page.goto(base + "/approvals");
  assert.equal(new URL(page.url()).pathname, "/login");
  await page.context().close();
});

test("a form posted without its CSRF token is refused and changes nothing", async () => {
  const submitted = await api("POST", "/api/v1/actions/submit", agentKey,
    { action_type: "s3.delete_bucket", parameters: { Bucket: "csrf-bucket" }, agent_id: "e2e-csrf" });
  assert.equal(submitted.status, "pending_approval");
  const page = await signIn(approverKey);
  await page.goto(base + "/approvals");
  const card = page.locator(`article#${submitted.id}`);
  await card.waitFor();
  await card.evaluate((el) => el.querySelectorAll('input[name="csrf"]').forEach((i) => i.remove()));
  await card.getByRole("button", { name: "Approve" }).click();
  await page.getByText("CSRF protection").waitFor();
  assert.match(await page.locator("h1").innerText(), /Not allowed/);
  const action = await api("GET", `/api/v1/actions/${submitted.id}`, adminKey);
  assert.equal(action.status, "pending"); // how GET /actions/{id} spells a waiting action
  await page.context().close();
});

test("overview, audit and policies pages render (and the policy editor shows errors at their line)", async () => {
  const page = await signIn(adminKey);
  await page.goto(base + "/");
  await page.locator("svg.chart").first().waitFor();
  await shot(page, "overview");
  await page.goto(base + "/audit");
  await page.locator("#chain[data-valid=true]").waitFor();
  await shot(page, "audit");
  await page.goto(base + "/policies");
  await page.getByLabel("Cedar policy set").fill(
    '@id("no-prod-delete") @reason("Bucket deletion needs a manager")\n' +
    'forbid(principal, action == Action::"s3:DeleteBucket", resource)\n' +
    '  when { resource.name like "prod*" ;\n');
  await page.getByRole("button", { name: "Validate and save" }).click();
  await page.locator("#problems").waitFor();
  assert.ok(await page.locator("li.bad").count() >= 1);
  await shot(page, "policies-error");
  await page.getByLabel("Cedar policy set").fill(
    '@id("no-prod-delete") @reason("Bucket deletion needs a manager")\n' +
    'forbid(principal, action == Action::"s3:DeleteBucket", resource)\n' +
    '  when { resource.name like "prod*" };\n');
  await page.getByLabel("Call").fill("s3.delete_bucket");
  await page.getByLabel("Parameters (JSON)").fill('{"Bucket": "prod-logs"}');
  await page.getByRole("button", { name: "Test this call" }).click();
  await page.locator("#verdict").waitFor();
  assert.match(await page.locator("#verdict h2").innerText(), /Verdict: deny/);
  await shot(page, "policies");
  await page.context().close();
});
