// Drives the web console (/) in a real browser (Debian chromium driven by playwright-core), as
// the demo Admin of Acme (a Viewer in Globex):
//   1. a wrong password is refused in words; the right one opens the console in Acme, where the
//      Admin sees the buttons to create, rename and delete flows, and uses two of them;
//   2. switching to Globex (POST /session/{tenant_id}) hides them: a Viewer may only read; an
//      answer for Acme's list that arrives after the switch is not drawn;
//   3. on the Tokens page, a named token (default expiration 600 s) is minted and shown once with
//      a copy button and a curl line; this script uses it over HTTP (the `token` header), revokes it
//      from the page and sees the 401 `token_revoked`;
//   1b. Acme's Audit page lists the changes newest first (20, then "More"), with who, which
//      credential and before/after, and its action and actor filters narrow it; as a Viewer in
//      Globex the page shows the API's refusal; 3b. "My security events" lists the logins and
//      tokens, and its action filter narrows it;
//   4. members of Acme with the role controls an Admin gets, one of which changes a role;
//   4b. the Admin of Globex invites this user into a new tenant; the Invitations page shows it
//      with Accept and Decline, and accepting puts the tenant in the switcher;
//   5. in a fresh profile, repeated failed logins are throttled and the page shows the wait;
//   6. "Log out everywhere" ends the session (its cookie gets 401 afterwards).
// No Content-Security-Policy violation and no page error may occur. Screenshots go to
// ARTIFACT_DIR (console-*.png). Any failed expectation exits non-zero.
//
// usage: node console.mjs BASE_URL ARTIFACT_DIR
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [baseUrl, artifacts] = process.argv.slice(2);
assert.ok(baseUrl && artifacts, "usage: console.mjs BASE_URL ARTIFACT_DIR");

const ADMIN = { email: "admin@acme.example", password: "acme-admin-demo" };
const problems = [];

async function browser() {
  const profile = mkdtempSync(join(tmpdir(), "zygo-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1280, height: 900 },
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
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: baseUrl });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  page.on("console", (msg) => {
    if (/Content Security Policy|Refused to/i.test(msg.text())) problems.push(`console: ${msg.text()}`);
  });
  return {
    page,
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** An HTTP call from this script, as curl would make it. */
async function http(path, headers = {}) {
  const response = await fetch(`${baseUrl}${path}`, { headers });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

/** An HTTP call with a method and a JSON body, as curl would make it. */
async function httpSend(method, path, headers = {}, body = undefined) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(`${baseUrl}${path}`, init);
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null, headers: response.headers };
}

async function openConsole(page) {
  const reply = await page.goto(`${baseUrl}/`);
  assert.equal(reply?.status(), 200, "GET /");
  await page.locator("#login-view").waitFor();
}

async function logIn(page, email, password) {
  await page.fill("#login-email", email);
  await page.fill("#login-password", password);
  await page.click("#login-submit");
}

async function flowRows(page) {
  await page.locator("#flow-rows tr").first().waitFor();
  return page.locator("#flow-rows tr");
}

async function mainRun() {
  const { page, context, close } = await browser();
  try {
    await openConsole(page);

    // 1. Errors in words; then the Admin of Acme.
    await logIn(page, ADMIN.email, "not the password");
    await page.locator("#login-error", { hasText: "E-mail or password is incorrect." }).waitFor();
    await logIn(page, ADMIN.email, ADMIN.password);
    await page.locator("#app-view").waitFor();
    assert.equal(await page.textContent("#whoami"), ADMIN.email);
    const current = await page.locator("#tenant-switcher option:checked").textContent();
    assert.equal(current, "Acme (Admin)", "the session starts in Acme");
    const cookies = await context.cookies(baseUrl);
    const session = cookies.find((c) => c.name === "session");
    assert.ok(session?.httpOnly, "the session cookie is HttpOnly");
    assert.equal(
      await page.evaluate(() => document.cookie.includes("session=")),
      false,
      "the page cannot read the session cookie",
    );

    await page.click('nav .tab[data-page="flows"]');
    let rows = await flowRows(page);
    await page.locator("#flow-rows tr", { hasText: "Onboarding" }).waitFor();
    assert.ok(await page.locator("#flow-form").isVisible(), "an Admin may create flows");
    const onboarding = page.locator("#flow-rows tr", { hasText: "Onboarding" });
    assert.equal(await onboarding.locator("button.rename").count(), 1, "an Admin may rename");
    assert.equal(await onboarding.locator("button.delete").count(), 1, "an Admin may delete");
    await page.fill("#flow-name", "Made in the console");
    await page.click("#flow-create");
    await page.locator("#flow-rows tr", { hasText: "Made in the console" }).waitFor();
    const madeId = await page.locator("#flow-rows tr", { hasText: "Made in the console" }).getAttribute("data-flow-id");
    const made = page.locator(`#flow-rows tr[data-flow-id="${madeId}"]`);
    await made.locator("button.rename").click();
    await made.locator("input").fill("Renamed in the console");
    await made.locator("button", { hasText: "Save" }).click();
    await page.locator("#flow-rows tr", { hasText: "Renamed in the console" }).waitFor();
    await page.screenshot({ path: join(artifacts, "console-flows-admin.png") });

    // 1b. Acme's audit trail, as its Admin: newest first, 20 at a time, with "More" and filters.
    const cookie = { cookie: `session=${session.value}` };
    const self = (await http("/api/me", cookie)).body;
    const acmeId = self.current_tenant_id;
    const filler = (await http("/api/token?expiration=600&name=audit-e2e", cookie)).body.token;
    const fillerJti = JSON.parse(Buffer.from(filler.split(".")[1], "base64url")).jti;
    for (let i = 0; i < 20; i++) {
      const made = await httpSend("POST", `/api/tenants/${acmeId}/flows`, { token: filler }, { name: `Audit filler ${i}`, definition: {} });
      assert.equal(made.status, 201, JSON.stringify(made.body));
    }
    await page.click('nav .tab[data-page="audit"]');
    const auditRows = page.locator("#audit-rows tr");
    await auditRows.first().waitFor();
    assert.equal(await auditRows.count(), 20, "20 events a page");
    const newest = auditRows.first();
    assert.equal(await newest.getAttribute("data-action"), "flow.created");
    assert.match(await newest.textContent(), /Audit filler 19/, "newest first");
    assert.equal(await newest.locator("td").nth(2).textContent(), `token:${fillerJti}`, "the credential used");
    assert.equal(await newest.locator("td.actor").textContent(), `you (${ADMIN.email})`);
    assert.equal(await page.locator('#audit-rows tr[data-action="flow.changed"]').count(), 0, "the rename is older");
    await page.click("#audit-more");
    const renamed = page.locator('#audit-rows tr[data-action="flow.changed"]', { hasText: "Renamed in the console" });
    await renamed.waitFor();
    assert.match(await renamed.locator("td.change").textContent(), /name: Made in the console → Renamed in the console/);
    assert.match(await renamed.locator("td").nth(2).textContent(), /^session:[0-9a-f]{16}$/, "the session, not its secret");
    await page.locator('#audit-rows tr[data-action="flow.created"]', { hasText: "Made in the console" }).waitFor();
    const unfiltered = await auditRows.count();
    assert.ok(unfiltered > 20, "More appended the next page");
    await page.screenshot({ path: join(artifacts, "console-audit.png") });

    await page.fill("#audit-action", "not an action");
    await page.click("#audit-filter");
    await page.locator("#audit-error", { hasText: "The action filter is a name like flow.created." }).waitFor();
    assert.equal(await auditRows.count(), unfiltered, "a bad filter changes nothing");
    await page.fill("#audit-action", "flow.changed");
    await page.click("#audit-filter");
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll("#audit-rows tr")];
      return rows.length > 0 && rows.every((r) => r.dataset.action === "flow.changed");
    });
    assert.ok((await auditRows.count()) >= 1 && (await auditRows.count()) < unfiltered, "the action filter narrows");
    assert.equal(await page.textContent("#audit-error"), "");
    await page.fill("#audit-action", "");
    await page.fill("#audit-actor", self.id);
    await page.click("#audit-filter");
    // The demo's seeded events have no actor ("—"): only this user's changes remain.
    await page.waitForFunction(() => {
      const actors = [...document.querySelectorAll("#audit-rows td.actor")].map((td) => td.textContent);
      return actors.length > 0 && actors.every((a) => a.startsWith("you ("));
    });
    await page.fill("#audit-actor", "");
    await page.fill("#audit-since", "2099-01-01T00:00");
    await page.click("#audit-filter");
    await page.locator("#audit-note", { hasText: "No events match." }).waitFor();
    await page.fill("#audit-until", "2098-01-01T00:00");
    await page.click("#audit-filter");
    await page.locator("#audit-error", { hasText: "Until: must be later than since." }).waitFor();
    await page.fill("#audit-since", "");
    await page.fill("#audit-until", "");
    await page.fill("#audit-actor", "00000000-0000-4000-8000-000000000000");
    await page.click("#audit-filter");
    await page.locator("#audit-note", { hasText: "No events match." }).waitFor();
    assert.equal(await auditRows.count(), 0);
    await page.click("#audit-clear");
    await page.waitForFunction(() => document.querySelectorAll("#audit-rows tr").length === 20);
    // 2. Switch to Globex, where this user is a Viewer, while Acme's flow list is still being
    //    drawn: the answer to its decisions is held back until Globex's list is shown, and must
    //    not replace it (a load that another one overtook draws nothing).
    const decisions = "**/api/tenants/*/authorize";
    let holding, released;
    const acmeHeld = new Promise((resolve) => (holding = resolve));
    const acmeAnswered = new Promise((resolve) => (released = resolve));
    let held = false;
    await page.route(decisions, async (route) => {
      if (held) return route.continue();
      held = true;
      const response = await route.fetch();
      holding();
      await page.locator("#flow-rows tr", { hasText: "Incident response" }).waitFor();
      await route.fulfill({ response });
      released();
    });
    await page.click('nav .tab[data-page="flows"]');
    await acmeHeld;
    await page.selectOption("#tenant-switcher", { label: "Globex (Viewer)" });
    await page.locator("#status", { hasText: "Now working in Globex." }).waitFor();
    await page.locator("#flow-rows tr", { hasText: "Incident response" }).waitFor();
    await acmeAnswered;
    // Time for the late answer to be drawn, were it drawn (nothing else is left to fetch).
    await page.waitForTimeout(1000);
    await page.unroute(decisions);
    rows = await flowRows(page);
    assert.equal(await rows.count(), 1, "Globex's flows only, not Acme's late answer");
    assert.equal(await page.locator("#flow-form").isVisible(), false, "a Viewer may not create");
    assert.equal(await page.locator("#flow-rows button").count(), 0, "nor rename nor delete");
    await page.screenshot({ path: join(artifacts, "console-flows-viewer.png") });
    // A Viewer's Audit page shows the API's refusal, as the other pages show errors.
    await page.click('nav .tab[data-page="audit"]');
    await page.locator("#audit-error", { hasText: "Your role in this tenant does not allow this." }).waitFor();
    assert.equal(await page.locator("#audit-rows tr").count(), 0, "no events for a Viewer");

    // 3. Tokens: mint a named token, use it, revoke it.
    await page.click('nav .tab[data-page="tokens"]');
    assert.equal(await page.inputValue("#token-expiration"), "600", "600 s by default");
    await page.fill("#token-name", "console-e2e");
    await page.click("#token-create");
    await page.locator("#new-token").waitFor();
    const token = await page.inputValue("#new-token-value");
    assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, "a JWT");
    const curl = await page.inputValue("#new-token-curl");
    assert.equal(curl, `curl -H 'token: ${token}' ${baseUrl}/api/me`, "a ready curl line with the token header");
    await page.click("#copy-token");
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), token, "Copy puts the token on the clipboard");
    assert.equal(await page.evaluate(() => localStorage.length + sessionStorage.length), 0, "nothing in browser storage");
    assert.ok(!page.url().includes(token), "the token is not in the URL");
    await page.screenshot({ path: join(artifacts, "console-token.png") });

    const jti = JSON.parse(Buffer.from(token.split(".")[1], "base64url")).jti;
    const me = await http("/api/me", { token });
    assert.equal(me.status, 200, `the token works: ${JSON.stringify(me.body)}`);
    assert.equal(me.body.email, ADMIN.email);
    const globex = me.body.memberships.find((m) => m.tenant_name === "Globex").tenant_id;
    const flows = await http(`/api/tenants/${globex}/flows`, { token });
    assert.equal(flows.status, 200, "the token reads Globex's flows");
    assert.deepEqual(
      flows.body.items.map((f) => f.name),
      ["Incident response"],
    );

    const row = page.locator(`#token-rows tr[data-jti="${jti}"]`);
    await row.waitFor();
    // The list comes from `GET /api/tokens` and names the new token.
    const list = await http("/api/tokens", { token });
    assert.equal(list.status, 200, `GET /api/tokens: ${JSON.stringify(list.body)}`);
    const listed = list.body.items.find((t) => t.jti === jti);
    assert.equal(listed?.name, "console-e2e", "the token list names the new token");
    assert.equal(await page.textContent("#token-list-note"), "", "the list is shown");
    assert.equal(await row.locator("td").first().textContent(), "console-e2e");
    await row.locator("button.revoke").click();
    await page.locator("#status", { hasText: "Token revoked" }).waitFor();
    const refused = await http("/api/me", { token });
    assert.equal(refused.status, 401, "the revoked token is refused");
    assert.equal(refused.body.code, "token_revoked");
    await page.screenshot({ path: join(artifacts, "console-token-revoked.png") });

    // 3b. My security events: the logins (and the refused one), the tokens minted and revoked.
    await page.click('nav .tab[data-page="my-audit"]');
    const mine = page.locator("#my-audit-rows tr");
    for (const action of ["login.succeeded", "login.failed", "token.minted", "token.revoked"]) {
      await page.locator(`#my-audit-rows tr[data-action="${action}"]`).first().waitFor();
    }
    assert.equal(await mine.first().getAttribute("data-action"), "token.revoked", "newest first");
    await page.locator('#my-audit-rows tr[data-action="token.minted"]', { hasText: "console-e2e" }).waitFor();
    const allMine = await mine.count();
    await page.screenshot({ path: join(artifacts, "console-my-audit.png") });
    await page.fill("#my-audit-action", "login.failed");
    await page.click("#my-audit-filter");
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll("#my-audit-rows tr")];
      return rows.length > 0 && rows.every((r) => r.dataset.action === "login.failed");
    });
    assert.equal(await mine.count(), 1, "one refused login");
    assert.ok(allMine > 1, "the filter narrows");
    assert.equal(await mine.locator("td").nth(2).textContent(), "password");

    // 4. Members of Acme, as its Admin.
    await page.selectOption("#tenant-switcher", { label: "Acme (Admin)" });
    await page.locator("#status", { hasText: "Now working in Acme." }).waitFor();
    await page.click('nav .tab[data-page="members"]');
    await page.locator("#member-rows tr", { hasText: "viewer@acme.example" }).waitFor();
    const viewer = page.locator("#member-rows tr", { hasText: "viewer@acme.example" });
    assert.equal(await viewer.locator("select").inputValue(), "Viewer");
    assert.equal(await viewer.locator("button.remove").count(), 1, "an Admin may remove members");
    assert.ok(await page.locator("#member-form").isVisible(), "and add them");
    await viewer.locator("select").selectOption("Editor");
    await viewer.locator("button.save-role").click();
    await page.locator("#status", { hasText: "Role set to Editor." }).waitFor();
    const acme = me.body.memberships.find((m) => m.tenant_name === "Acme").tenant_id;
    const members = await http(`/api/tenants/${acme}/members`, { cookie: `session=${session.value}` });
    assert.equal(members.status, 200);
    assert.equal(members.body.items.find((m) => m.email === "viewer@acme.example").role, "Editor");
    await page.screenshot({ path: join(artifacts, "console-members.png") });

    // 4b. An invitation from another tenant's Admin: shown with Accept/Decline, accepted here.
    const other = await httpSend("POST", "/api/login", {}, { email: "admin@globex.example", password: "globex-admin-demo" });
    assert.equal(other.status, 200, "the Globex Admin logs in");
    const otherCookie = other.headers.get("set-cookie").split(";")[0];
    const otherToken = (await http("/api/token", { cookie: otherCookie })).body.token;
    const invitingTenant = await httpSend("POST", "/api/tenants", { token: otherToken }, { name: "Invited Co" });
    assert.equal(invitingTenant.status, 201, JSON.stringify(invitingTenant.body));
    const invited = await httpSend(
      "PUT",
      `/api/tenants/${invitingTenant.body.id}/members/${me.body.id}`,
      { token: otherToken },
      { role: "Editor" },
    );
    assert.equal(invited.status, 202, JSON.stringify(invited.body));
    assert.equal(invited.body.status, "invited");
    assert.ok(!JSON.stringify(invited.body).includes("@"), "the inviter learns no e-mail");
    assert.equal(
      await page.locator("#tenant-switcher option", { hasText: "Invited Co" }).count(),
      0,
      "nothing of the tenant shows before accepting",
    );
    await page.click('nav .tab[data-page="invitations"]');
    const invitation = page.locator("#invitation-rows tr", { hasText: "Invited Co" });
    await invitation.waitFor();
    assert.equal(await invitation.locator("td").nth(1).textContent(), "Editor");
    assert.equal(await invitation.locator("button.decline").count(), 1, "it may be declined");
    await page.screenshot({ path: join(artifacts, "console-invitations.png") });
    await invitation.locator("button.accept").click();
    await page.locator("#status", { hasText: "You are now a member of Invited Co as Editor." }).waitFor();
    await page.locator("#tenant-switcher option", { hasText: "Invited Co (Editor)" }).waitFor({ state: "attached" });
    await page.locator("#invitation-note", { hasText: "No invitations are waiting for you." }).waitFor();

    // 6. Log out everywhere: the session cookie is dead afterwards.
    await page.click("#logout-everywhere");
    await page.locator("#login-view").waitFor();
    await page.locator("#status", { hasText: "Logged out everywhere" }).waitFor();
    const after = await http("/api/me", { cookie: `session=${session.value}` });
    assert.equal(after.status, 401, "the old session is refused");
  } finally {
    await close();
  }
}

async function throttled() {
  const { page, close } = await browser();
  try {
    await openConsole(page);
    // 5 failures per account and address are allowed (the default); the 6th attempt is refused.
    for (let i = 0; i < 6; i++) {
      await logIn(page, "nobody@acme.example", `wrong ${i}`);
      await page.waitForFunction(() => document.querySelector("#login-error").textContent !== "");
      if (await page.locator("#login-submit").isDisabled()) break;
      await page.locator("#login-error", { hasText: "E-mail or password is incorrect." }).waitFor();
      await page.evaluate(() => (document.querySelector("#login-error").textContent = ""));
    }
    const message = page.locator("#login-error", { hasText: /Too many failed attempts\. Try again in \d+ seconds\./ });
    await message.waitFor();
    assert.ok(await page.locator("#login-submit").isDisabled(), "the form waits out the Retry-After");
    await page.screenshot({ path: join(artifacts, "console-throttled.png") });
  } finally {
    await close();
  }
}

try {
  await mainRun();
  await throttled();
  assert.deepEqual(problems, [], "no page errors and no Content-Security-Policy violations");
  console.log("console: login, tenant switch, decisions, token mint/use/revoke, audit pages, invitations, throttling and log out everywhere work (screenshots in " + artifacts + ")");
} catch (err) {
  console.error(err);
  if (problems.length) console.error(problems.join("\n"));
  process.exit(1);
}
