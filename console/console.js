// The Zygo web console. It uses only the public API, authenticated by the HttpOnly `session`
// cookie the browser holds after `POST /api/login`; same-origin fetch sends `Origin` and
// `Sec-Fetch-Site`, which is what the service's CSRF check asks of a state-changing request.
// A minted token lives only in this page's memory and in the copy-once panel: never in the URL
// or in browser storage. Which buttons show is asked of the decision API, once per
// page (`POST /api/tenants/{tenant_id}/authorize`).
"use strict";

const $ = (id) => document.getElementById(id);

/** Most questions one decision request may ask (the API's limit). */
const MAX_QUESTIONS = 100;

const state = {
  me: null,
  page: "tokens",
  roles: null,
  tokenCursor: null,
  invitationCursor: null,
  loginCountdown: null,
};

class ApiError extends Error {
  constructor(status, problem, headers) {
    super((problem && problem.detail) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem && typeof problem === "object" ? problem : {};
    this.headers = headers;
  }
}

async function api(method, path, body) {
  const init = { method, headers: { accept: "application/json" }, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, { detail: "the service could not be reached" }, new Headers());
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { detail: text };
    }
  }
  if (!response.ok) throw new ApiError(response.status, data, response.headers);
  return data;
}

/** Seconds to wait from a 429's `Retry-After` (or its problem detail). */
function retryAfter(err) {
  const header = Number.parseInt(err.headers?.get("retry-after") ?? "", 10);
  return Number.isFinite(header) && header > 0 ? header : 60;
}

function sentence(text) {
  const t = String(text).trim();
  if (!t) return "";
  const s = t[0].toUpperCase() + t.slice(1);
  return /[.!?]$/.test(s) ? s : `${s}.`;
}

/** An error in words for the person at the keyboard. */
function describe(err) {
  if (!(err instanceof ApiError)) return "Something went wrong in the console: " + sentence(err?.message ?? err);
  if (err.status === 0) return "The service could not be reached. Check the connection and try again.";
  switch (err.problem.code) {
    case "login_failed":
      return "E-mail or password is incorrect.";
    case "too_many_requests":
      return `Too many failed attempts. Try again in ${retryAfter(err)} seconds.`;
    case "unauthenticated":
    case "session_invalid":
      return "Your session has ended. Log in again.";
    case "forbidden":
      return "Your role in this tenant does not allow this.";
    case "tenant_not_selected":
      return "This tenant is not the session's current tenant. Pick it in the tenant switcher first.";
    case "cross_site_request":
      return "The request was refused because it did not come from this service's own page.";
    case "unavailable":
      return "The service cannot reach its database right now. Try again in a moment.";
    case "internal":
      return "The service failed unexpectedly. Try again; if it persists, tell the operators.";
  }
  if (err.problem.detail) return sentence(err.problem.detail);
  return `The request failed (HTTP ${err.status}).`;
}

function setStatus(text) {
  $("status").textContent = text;
}

/** Runs an action; a 401 ends the app view, other errors show in `errorId` (or the status line). */
async function attempt(errorId, action) {
  const target = errorId ? $(errorId) : null;
  if (target) target.textContent = "";
  try {
    return await action();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      showLogin(describe(err));
      return undefined;
    }
    if (target) target.textContent = describe(err);
    else setStatus(describe(err));
    return undefined;
  }
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node[key] = value;
  }
  for (const child of children) node.append(child);
  return node;
}

function when(value) {
  if (value === null || value === undefined) return "";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

function untilText(value) {
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  const seconds = Math.round((date.getTime() - Date.now()) / 1000);
  if (seconds <= 0) return "expired";
  if (seconds < 120) return `in ${seconds} s`;
  if (seconds < 7200) return `in ${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `in ${Math.round(seconds / 3600)} h`;
  return `in ${Math.round(seconds / 86400)} days`;
}

/** The claims of a JWT (its middle part), or {} when it cannot be read. */
function claimsOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part + "===".slice((part.length + 3) % 4)));
  } catch {
    return {};
  }
}

function currentTenant() {
  const id = state.me?.current_tenant_id;
  return state.me?.memberships.find((m) => m.tenant_id === id) ?? null;
}

// ---------------------------------------------------------------- login and account

function showLogin(message = "") {
  state.me = null;
  clearNewToken();
  $("app-view").hidden = true;
  $("account").hidden = true;
  $("login-view").hidden = false;
  $("login-error").textContent = message;
  $("login-email").focus();
}

function startCountdown(seconds) {
  clearInterval(state.loginCountdown);
  const button = $("login-submit");
  const ends = Date.now() + seconds * 1000;
  const tick = () => {
    const left = Math.ceil((ends - Date.now()) / 1000);
    if (left <= 0) {
      clearInterval(state.loginCountdown);
      button.disabled = false;
      $("login-error").textContent = "You can try again now.";
      return;
    }
    button.disabled = true;
    $("login-error").textContent = `Too many failed attempts. Try again in ${left} seconds.`;
  };
  tick();
  state.loginCountdown = setInterval(tick, 1000);
}

async function login(event) {
  event.preventDefault();
  const email = $("login-email").value.trim();
  const password = $("login-password").value;
  if (!email || !password) {
    $("login-error").textContent = "Enter your e-mail and password.";
    return;
  }
  $("login-submit").disabled = true;
  $("login-error").textContent = "";
  try {
    await api("POST", "/api/login", { email, password });
    $("login-password").value = "";
    $("login-submit").disabled = false;
    await enterApp();
  } catch (err) {
    $("login-submit").disabled = false;
    if (err instanceof ApiError && err.status === 429) startCountdown(retryAfter(err));
    else $("login-error").textContent = describe(err);
  }
}

async function enterApp() {
  const me = await api("GET", "/api/me");
  state.me = me;
  $("login-view").hidden = true;
  $("account").hidden = false;
  $("app-view").hidden = false;
  $("whoami").textContent = me.email;
  const switcher = $("tenant-switcher");
  switcher.replaceChildren(
    ...me.memberships.map((m) =>
      el("option", { value: m.tenant_id, text: `${m.tenant_name} (${m.role})` }),
    ),
  );
  if (!me.current_tenant_id) {
    switcher.prepend(el("option", { value: "", text: "choose a tenant", disabled: true }));
  }
  switcher.value = me.current_tenant_id ?? "";
  const tenant = currentTenant();
  for (const node of document.querySelectorAll(".tenant-name")) node.textContent = tenant?.tenant_name ?? "no tenant";
  await attempt(null, countInvitations);
  await showPage(state.page);
}

async function switchTenant() {
  const id = $("tenant-switcher").value;
  if (!id) return;
  await attempt(null, async () => {
    await api("POST", `/session/${encodeURIComponent(id)}`);
    await enterApp();
    setStatus(`Now working in ${currentTenant()?.tenant_name ?? "the chosen tenant"}.`);
  });
  if (state.me) $("tenant-switcher").value = state.me.current_tenant_id ?? "";
}

async function logout(everywhere) {
  const path = everywhere ? "/api/logout-everywhere" : "/api/logout";
  try {
    await api("POST", path);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) {
      setStatus(describe(err));
      return;
    }
  }
  showLogin();
  setStatus(
    everywhere
      ? "Logged out everywhere: every session and every token of yours has ended."
      : "Logged out.",
  );
}

// ---------------------------------------------------------------- pages

/** The latest load of each list, by number: see [`newLoad`]. */
const loads = {};

/**
 * Starts a load of `list` and returns a check that it is still the latest one. A load that
 * another started after it (a tenant switch, a second click) overtook must not draw its rows:
 * they would show the previous tenant's data under the new tenant's name.
 */
function newLoad(list) {
  const ticket = (loads[list] = (loads[list] ?? 0) + 1);
  return () => loads[list] === ticket;
}

async function showPage(page) {
  if (page !== "tokens") clearNewToken();
  state.page = page;
  for (const tab of document.querySelectorAll("nav .tab")) {
    if (tab.dataset.page === page) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  for (const section of document.querySelectorAll(".page")) section.hidden = section.id !== `page-${page}`;
  if (page === "tokens") await attempt("token-error", loadTokens);
  if (page === "flows") await attempt("flow-error", loadFlows);
  if (page === "members") await attempt("member-error", loadMembers);
  if (page === "invitations") await attempt("invitation-error", loadInvitations);
  // audit.js: the tenant's trail and your own security events.
  if (page in TRAILS) await attempt(`${TRAILS[page].prefix}-error`, () => loadTrail(page));
}

/** Asks the decision API once; answers keyed `Action Type:id`. Denies all when it cannot ask. */
async function decide(tenant, items) {
  const allowed = new Set();
  for (let start = 0; start < items.length; start += MAX_QUESTIONS) {
    const batch = items.slice(start, start + MAX_QUESTIONS);
    const answer = await api("POST", `/api/tenants/${tenant}/authorize`, { items: batch });
    for (const result of answer.results) {
      if (result.decision === "Allow") allowed.add(`${result.action} ${result.resource.type}:${result.resource.id}`);
    }
  }
  return (action, type, id) => allowed.has(`${action} ${type}:${id}`);
}

// ---------------------------------------------------------------- tokens

function clearNewToken() {
  $("new-token-value").value = "";
  $("new-token-curl").value = "";
  $("new-token-warning").textContent = "";
  $("new-token").hidden = true;
}

async function copy(inputId, button) {
  const input = $(inputId);
  let copied = false;
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(input.value);
      copied = true;
    }
  } catch {
    copied = false;
  }
  if (!copied) {
    input.select();
    copied = document.execCommand("copy");
  }
  const label = button.textContent;
  button.textContent = copied ? "Copied" : "Select and copy by hand";
  setTimeout(() => (button.textContent = label), 1500);
}

function shellQuote(value) {
  return `'${String(value).replace(/'/g, `'\\''`)}'`;
}

async function createToken(event) {
  event.preventDefault();
  const name = $("token-name").value.trim();
  const expiration = $("token-expiration").value.trim() || "600";
  const readOnly = $("token-read-only").checked;
  if (!/^[0-9]+$/.test(expiration) || Number(expiration) < 1) {
    $("token-error").textContent = "The expiration is a whole number of seconds, at least 1.";
    return;
  }
  const params = new URLSearchParams({ expiration });
  if (name) params.set("name", name);
  if (readOnly) params.set("read_only", "true");
  await attempt("token-error", async () => {
    const minted = await api("GET", `/api/token?${params}`);
    const claims = claimsOf(minted.token);
    const isReadOnly = claims.ro === true;
    $("new-token-value").value = minted.token;
    $("new-token-curl").value = `curl -H ${shellQuote(`token: ${minted.token}`)} ${location.origin}/api/me`;
    $("new-token-meta").textContent =
      `${name ? `“${name}”, ` : ""}${isReadOnly ? "read-only" : "read and write"}, ` +
      `expires ${when(claims.exp ?? Date.now() / 1000 + minted.expires_in)}`;
    $("new-token-warning").textContent =
      readOnly && !isReadOnly ? "The server did not make this token read-only: it can also write." : "";
    $("new-token").hidden = false;
    $("token-name").value = "";
    $("token-read-only").checked = false;
    await loadTokens();
  });
}

async function revokeToken(jti) {
  await attempt("token-error", async () => {
    await api("POST", "/api/token/revoke", { jti });
    setStatus("Token revoked, together with every token minted from it.");
    await loadTokens();
  });
}

function tokenRow(token) {
  const expired = new Date(typeof token.expires_at === "number" ? token.expires_at * 1000 : token.expires_at) <= new Date();
  const actions = el("td", { className: "actions" });
  if (!expired && token.jti) {
    actions.append(
      el("button", {
        type: "button",
        className: "danger revoke",
        text: "Revoke",
        onclick: () => revokeToken(token.jti),
      }),
    );
  }
  return el(
    "tr",
    { dataset: { jti: token.jti ?? "" } },
    el("td", { text: token.name ?? "—" }),
    el("td", { className: "mono", title: token.jti ?? "", text: (token.jti ?? "").slice(0, 8) }),
    el("td", { text: when(token.created_at) }),
    el("td", { text: `${when(token.expires_at)} (${untilText(token.expires_at)})` }),
    el("td", { text: token.read_only ? "read-only" : "read and write" }),
    el("td", { text: token.minted_from ?? "" }),
    actions,
  );
}

async function loadTokens(more = false) {
  const rows = $("token-rows");
  const note = $("token-list-note");
  const query = new URLSearchParams({ limit: "20" });
  if (more && state.tokenCursor) query.set("cursor", state.tokenCursor);
  const latest = newLoad("tokens");
  const page = await api("GET", `/api/tokens?${query}`);
  if (!latest()) return;
  state.tokenCursor = page.next_cursor ?? null;
  if (more) rows.append(...page.items.map(tokenRow));
  else rows.replaceChildren(...page.items.map(tokenRow));
  note.textContent = page.items.length || more ? "" : "You have no live tokens.";
  $("token-more").hidden = !state.tokenCursor;
}

// ---------------------------------------------------------------- flows

/** One decision request per page: 1 tenant question and 2 per flow stay within 100. */
const FLOWS_PER_PAGE = (MAX_QUESTIONS - 1) / 2;

async function loadFlows() {
  const latest = newLoad("flows");
  const tenant = currentTenant();
  const rows = $("flow-rows");
  rows.replaceChildren();
  $("flow-form").hidden = true;
  if (!tenant) {
    $("flow-error").textContent = "Choose a tenant first.";
    return;
  }
  const t = tenant.tenant_id;
  const page = await api("GET", `/api/tenants/${t}/flows?limit=${Math.floor(FLOWS_PER_PAGE)}`);
  if (!latest()) return;
  const items = [{ action: "CreateFlow", resource: { type: "Tenant", id: t } }];
  for (const flow of page.items) {
    items.push({ action: "UpdateFlow", resource: { type: "Flow", id: flow.id } });
    items.push({ action: "DeleteFlow", resource: { type: "Flow", id: flow.id } });
  }
  const may = await decide(t, items);
  if (!latest()) return;
  $("flow-form").hidden = !may("CreateFlow", "Tenant", t);
  $("flow-more").hidden = !page.next_cursor;
  rows.replaceChildren(
    ...page.items.map((flow) => {
      const nameCell = el("td", { text: flow.name });
      const actions = el("td", { className: "actions" });
      if (may("UpdateFlow", "Flow", flow.id)) {
        actions.append(
          el("button", {
            type: "button",
            className: "secondary rename",
            text: "Rename",
            onclick: () => renameFlow(t, flow, nameCell),
          }),
        );
      }
      if (may("DeleteFlow", "Flow", flow.id)) {
        actions.append(
          el("button", {
            type: "button",
            className: "danger delete",
            text: "Delete",
            onclick: () =>
              attempt("flow-error", async () => {
                await api("DELETE", `/api/tenants/${t}/flows/${flow.id}`);
                setStatus(`Flow “${flow.name}” deleted.`);
                await loadFlows();
              }),
          }),
        );
      }
      return el("tr", { dataset: { flowId: flow.id } }, nameCell, el("td", { text: when(flow.updated_at) }), actions);
    }),
  );
}

function renameFlow(tenant, flow, cell) {
  const input = el("input", { type: "text", value: flow.name, maxLength: 200, ariaLabel: "New name" });
  const save = el("button", {
    type: "button",
    text: "Save",
    onclick: () =>
      attempt("flow-error", async () => {
        await api("PATCH", `/api/tenants/${tenant}/flows/${flow.id}`, { name: input.value.trim() });
        setStatus("Flow renamed.");
        await loadFlows();
      }),
  });
  cell.replaceChildren(input, save);
  input.focus();
}

async function createFlow(event) {
  event.preventDefault();
  const tenant = currentTenant();
  const name = $("flow-name").value.trim();
  if (!name) {
    $("flow-error").textContent = "Give the flow a name.";
    return;
  }
  await attempt("flow-error", async () => {
    await api("POST", `/api/tenants/${tenant.tenant_id}/flows`, { name, definition: {} });
    $("flow-name").value = "";
    setStatus(`Flow “${name}” created.`);
    await loadFlows();
  });
}

// ---------------------------------------------------------------- members

/** 2 questions per member and 1 for adding stay within one decision request. */
const MEMBERS_PER_PAGE = Math.floor((MAX_QUESTIONS - 1) / 2);
/** A member id no one has, to ask whether the caller may add members at all. */
const SOMEONE_NEW = "00000000-0000-4000-8000-000000000000";

async function roles() {
  if (state.roles) return state.roles;
  try {
    const doc = await api("GET", "/openapi.json");
    state.roles = doc.components.schemas.RoleRequest.properties.role.enum ?? null;
  } catch {
    state.roles = null;
  }
  state.roles = state.roles ?? ["Admin", "Editor", "Viewer"];
  return state.roles;
}

function roleSelect(current, label) {
  const select = el("select", { ariaLabel: label });
  for (const role of state.roles) select.append(el("option", { value: role, text: role }));
  select.value = current;
  return select;
}

async function loadMembers() {
  const latest = newLoad("members");
  const tenant = currentTenant();
  const rows = $("member-rows");
  rows.replaceChildren();
  $("member-form").hidden = true;
  if (!tenant) {
    $("member-error").textContent = "Choose a tenant first.";
    return;
  }
  const t = tenant.tenant_id;
  await roles();
  const page = await api("GET", `/api/tenants/${t}/members?limit=${MEMBERS_PER_PAGE}`);
  if (!latest()) return;
  const items = [{ action: "SetMemberRole", resource: { type: "Member", id: SOMEONE_NEW } }];
  for (const member of page.items) {
    items.push({ action: "SetMemberRole", resource: { type: "Member", id: member.user_id } });
    items.push({ action: "RemoveMember", resource: { type: "Member", id: member.user_id } });
  }
  const may = await decide(t, items);
  if (!latest()) return;
  $("member-form").hidden = !may("SetMemberRole", "Member", SOMEONE_NEW);
  $("member-role").replaceChildren(...state.roles.map((r) => el("option", { value: r, text: r })));
  $("member-more").hidden = !page.next_cursor;
  rows.replaceChildren(
    ...page.items.map((member) => {
      const roleCell = el("td");
      if (may("SetMemberRole", "Member", member.user_id)) {
        // A role changes only on "Save": a slip of the select must not demote anyone.
        const select = roleSelect(member.role, `Role of ${member.email}`);
        const save = el("button", {
          type: "button",
          className: "secondary save-role",
          text: "Save",
          disabled: true,
          onclick: () => setRole(t, member.user_id, select.value),
        });
        select.addEventListener("change", () => (save.disabled = select.value === member.role));
        roleCell.append(select, " ", save);
      } else roleCell.textContent = member.role;
      const actions = el("td", { className: "actions" });
      if (may("RemoveMember", "Member", member.user_id)) {
        actions.append(
          el("button", {
            type: "button",
            className: "danger remove",
            text: "Remove",
            onclick: () =>
              attempt("member-error", async () => {
                await api("DELETE", `/api/tenants/${t}/members/${member.user_id}`);
                setStatus(`${member.email} removed.`);
                await afterMembershipChange(member.user_id);
              }),
          }),
        );
      }
      return el("tr", { dataset: { userId: member.user_id } }, el("td", { text: member.email }), roleCell, actions);
    }),
  );
}

/** A change to your own membership changes what you may do: reload who you are first. */
async function afterMembershipChange(user) {
  if (user === state.me?.id) await enterApp();
  else await loadMembers();
}

async function setRole(tenant, user, role) {
  await attempt("member-error", async () => {
    const answer = await api("PUT", `/api/tenants/${tenant}/members/${user}`, { role });
    if (answer?.status === "invited") {
      // The same answer whether or not the id names a user: say no more than that.
      setStatus(`Invitation as ${role} sent to ${user}: they become a member once they accept.`);
    } else setStatus(`Role set to ${role}.`);
    await afterMembershipChange(user);
  });
  if (state.page === "members" && $("member-error").textContent) await attempt(null, loadMembers);
}

async function addMember(event) {
  event.preventDefault();
  const tenant = currentTenant();
  const user = $("member-user").value.trim();
  if (!/^[0-9a-fA-F-]{36}$/.test(user)) {
    $("member-error").textContent = "The user id is a UUID (ask the user for it: GET /api/me shows it).";
    return;
  }
  await setRole(tenant.tenant_id, user.toLowerCase(), $("member-role").value);
  $("member-user").value = "";
}

// ---------------------------------------------------------------- invitations

/** Shows how many invitations wait on the tab (the first page's worth at most). */
async function countInvitations() {
  const page = await api("GET", "/api/invitations?limit=100");
  const count = page.items.length;
  const more = page.next_cursor ? "+" : "";
  $("invitations-tab").textContent = count ? `Invitations (${count}${more})` : "Invitations";
}

function invitationRow(invitation) {
  const t = invitation.tenant_id;
  const respond = (answer) =>
    attempt("invitation-error", async () => {
      await api("POST", `/api/invitations/${encodeURIComponent(t)}/${answer}`);
      setStatus(
        answer === "accept"
          ? `You are now a member of ${invitation.tenant_name} as ${invitation.role}. Pick it in the tenant switcher to work there.`
          : `Invitation to ${invitation.tenant_name} declined.`,
      );
      // Accepting adds a tenant to the switcher; both change the count.
      await enterApp();
    });
  return el(
    "tr",
    { dataset: { tenantId: t } },
    el("td", { text: invitation.tenant_name }),
    el("td", { text: invitation.role }),
    el("td", { text: when(invitation.created_at) }),
    el(
      "td",
      { className: "actions" },
      el("button", { type: "button", className: "accept", text: "Accept", onclick: () => respond("accept") }),
      el("button", { type: "button", className: "secondary decline", text: "Decline", onclick: () => respond("decline") }),
    ),
  );
}

async function loadInvitations(more = false) {
  const rows = $("invitation-rows");
  const query = new URLSearchParams({ limit: "20" });
  if (more && state.invitationCursor) query.set("cursor", state.invitationCursor);
  const latest = newLoad("invitations");
  const page = await api("GET", `/api/invitations?${query}`);
  if (!latest()) return;
  state.invitationCursor = page.next_cursor ?? null;
  if (more) rows.append(...page.items.map(invitationRow));
  else rows.replaceChildren(...page.items.map(invitationRow));
  $("invitation-note").textContent =
    page.items.length || more ? "" : "No invitations are waiting for you.";
  $("invitation-more").hidden = !state.invitationCursor;
}

// ---------------------------------------------------------------- start

function start() {
  $("login-form").addEventListener("submit", login);
  $("tenant-switcher").addEventListener("change", switchTenant);
  $("logout").addEventListener("click", () => logout(false));
  $("logout-everywhere").addEventListener("click", () => logout(true));
  for (const tab of document.querySelectorAll("nav .tab")) {
    tab.addEventListener("click", () => {
      setStatus("");
      showPage(tab.dataset.page);
    });
  }
  $("token-form").addEventListener("submit", createToken);
  $("copy-token").addEventListener("click", (e) => copy("new-token-value", e.currentTarget));
  $("copy-curl").addEventListener("click", (e) => copy("new-token-curl", e.currentTarget));
  $("new-token-done").addEventListener("click", clearNewToken);
  $("token-more").addEventListener("click", () => attempt("token-error", () => loadTokens(true)));
  $("flow-form").addEventListener("submit", createFlow);
  $("member-form").addEventListener("submit", addMember);
  $("invitation-more").addEventListener("click", () => attempt("invitation-error", () => loadInvitations(true)));
  startAudit();
  // Already logged in (the cookie is HttpOnly: ask the API who we are).
  api("GET", "/api/me")
    .then(() => enterApp())
    .catch((err) => showLogin(err instanceof ApiError && err.status === 401 ? "" : describe(err)));
}

start();
