// Clicks through Swagger UI (/docs) in a real browser (Debian chromium driven by playwright-core):
//   1. Authorize → TokenHeader with a token, execute "List flows" for a tenant, expect 200 and
//      the tenant's flows on the page;
//   2. in a fresh browser profile, execute "Log in" from the page (the browser keeps the session
//      cookie), then "List flows" again with the cookie alone, expect 200.
// Screenshots of both go to ARTIFACT_DIR. Any failed expectation exits non-zero.
//
// usage: node swagger.mjs BASE_URL TOKEN TENANT_ID ARTIFACT_DIR
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [baseUrl, token, tenantId, artifacts] = process.argv.slice(2);
assert.ok(baseUrl && token && tenantId && artifacts, "usage: swagger.mjs BASE_URL TOKEN TENANT_ID ARTIFACT_DIR");

async function browser() {
  const profile = mkdtempSync(join(tmpdir(), "zygo-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1280, height: 1400 },
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  context.setDefaultTimeout(20_000);
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("pageerror", (err) => console.error("page error:", err.message));
  return {
    page,
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

async function openDocs(page) {
  const reply = await page.goto(`${baseUrl}/docs`);
  assert.equal(reply?.status(), 200, "GET /docs");
  await page.locator(".swagger-ui .info .title", { hasText: "Zygo" }).waitFor();
}

/** Expands an operation, presses "Try it out", lets `fill` set inputs, presses "Execute". */
async function execute(page, tag, operationId, fill = async () => {}) {
  const op = page.locator(`#operations-${tag}-${operationId}`);
  await op.locator(".opblock-summary").first().click();
  await op.getByRole("button", { name: "Try it out" }).click();
  await fill(op);
  await op.getByRole("button", { name: "Execute" }).click();
  const status = op.locator(".live-responses-table .response .response-col_status").first();
  await status.waitFor();
  const body = op.locator(".live-responses-table .response-col_description .microlight").first();
  await body.waitFor();
  return {
    op,
    status: (await status.textContent()).trim(),
    body: JSON.parse(await body.textContent()),
    curl: (await op.locator(".curl-command").first().textContent()) ?? "",
  };
}

async function listFlows(page) {
  const result = await execute(page, "Flows", "listFlows", async (op) => {
    await op.locator('tr[data-param-name="tenant_id"] input').fill(tenantId);
  });
  assert.equal(result.status, "200", `list flows: ${JSON.stringify(result.body)}`);
  assert.ok(Array.isArray(result.body.items), "a page of flows");
  const names = result.body.items.map((flow) => flow.name);
  assert.ok(names.includes("Onboarding"), `Acme's demo flows are listed: ${names}`);
  await result.op.scrollIntoViewIfNeeded();
  return result;
}

async function withToken() {
  const { page, close } = await browser();
  try {
    await openDocs(page);
    await page.locator("button.authorize").first().click();
    const modal = page.locator(".modal-ux");
    const scheme = modal.locator(".auth-container").filter({ hasText: "TokenHeader" });
    await scheme.locator("input").fill(token);
    await scheme.locator("button.authorize").click();
    await scheme.locator("button", { hasText: "Logout" }).waitFor();
    await modal.locator("button.close-modal").click();
    await modal.waitFor({ state: "detached" });
    const result = await listFlows(page);
    assert.match(result.curl, /-H 'token: /, "the request carried the token header");
    await page.screenshot({ path: join(artifacts, "swagger-ui-token.png"), fullPage: false });
  } finally {
    await close();
  }
}

async function withSession() {
  const { page, context, close } = await browser();
  try {
    await openDocs(page);
    const login = await execute(page, "Auth", "login", async (op) => {
      const body = op.locator("textarea.body-param__text");
      await body.fill(JSON.stringify({ email: "admin@acme.example", password: "acme-admin-demo" }));
    });
    assert.equal(login.status, "200", `login: ${JSON.stringify(login.body)}`);
    assert.equal(login.body.email, "admin@acme.example");
    assert.equal(login.body.current_tenant_id, tenantId, "the session works in Acme");
    const cookies = await context.cookies(baseUrl);
    const session = cookies.find((c) => c.name === "session");
    assert.ok(session?.httpOnly, "the browser holds the HttpOnly session cookie");
    const result = await listFlows(page);
    assert.doesNotMatch(result.curl, /token: /, "no token: the cookie authenticated the call");
    await page.screenshot({ path: join(artifacts, "swagger-ui-session.png"), fullPage: false });
  } finally {
    await close();
  }
}

try {
  await withToken();
  await withSession();
  console.log("swagger ui: token and session logins both list flows (screenshots in " + artifacts + ")");
} catch (err) {
  console.error(err);
  process.exit(1);
}
