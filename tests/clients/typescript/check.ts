// Uses the TypeScript client generated from openapi/openapi.json (openapi-typescript types +
// openapi-fetch) as a user would: log in, mint a token, create a tenant, add a member,
// create/list/read/update/delete a flow, and the typed errors 401, 403 and 404.
// `tsc` type-checks this file against the generated types first; any failed assertion exits 1.
//
// usage: tsx check.ts BASE_URL
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import createClient from "openapi-fetch";
import type { components, paths } from "../generated/typescript/zygo.d.ts";

type Problem = components["schemas"]["Problem"];
type Role = components["schemas"]["RoleRequest"]["role"];

const baseUrl = process.argv[2];
assert.ok(baseUrl, "usage: check.ts BASE_URL");

function expectProblem(
  result: { error?: Problem; response: Response },
  status: number,
  code: string,
): void {
  assert.equal(result.response.status, status, JSON.stringify(result.error));
  assert.equal(result.response.headers.get("content-type"), "application/problem+json");
  const problem = result.error;
  assert.ok(problem, "a typed problem body");
  assert.equal(problem.status, status);
  assert.equal(problem.code, code);
  assert.equal(problem.type, `urn:zygo:problem:${code}`);
  assert.ok(problem.title.length > 0 && problem.detail.length > 0);
}

/** Logs in (session cookie), mints a token with that session, returns a token client. */
async function tokenClient(email: string, password: string) {
  const anonymous = createClient<paths>({ baseUrl });
  const login = await anonymous.POST("/api/login", { body: { email, password } });
  assert.equal(login.response.status, 200, JSON.stringify(login.error));
  assert.equal(login.data?.email, email);
  const cookie = login.response.headers.get("set-cookie") ?? "";
  const session = /(?:^|\s)session=([^;]+)/.exec(cookie)?.[1];
  assert.ok(session, `a session cookie in ${cookie}`);
  assert.match(cookie, /HttpOnly/i);
  const minted = await anonymous.GET("/api/token", {
    params: { query: { expiration: 3600 } },
    headers: { cookie: `session=${session}` },
  });
  assert.equal(minted.response.status, 200, JSON.stringify(minted.error));
  assert.ok(minted.data);
  const expiresIn: number = minted.data.expires_in;
  assert.equal(expiresIn, 3600);
  return createClient<paths>({ baseUrl, headers: { token: minted.data.token } });
}

async function main(): Promise<void> {
  const anonymous = createClient<paths>({ baseUrl });
  expectProblem(
    await anonymous.POST("/api/login", {
      body: { email: "admin@acme.example", password: "not-the-password" },
    }),
    401,
    "login_failed",
  );
  expectProblem(await anonymous.GET("/api/tenants"), 401, "unauthenticated");

  const admin = await tokenClient("admin@acme.example", "acme-admin-demo");
  const me = await admin.GET("/api/me");
  assert.equal(me.response.status, 200);
  assert.equal(me.data?.current_tenant_id, null, "tokens have no current tenant");

  const name = `TypeScript client ${randomUUID().slice(0, 8)}`;
  const created = await admin.POST("/api/tenants", { body: { name } });
  assert.equal(created.response.status, 201, JSON.stringify(created.error));
  assert.ok(created.data);
  assert.equal(created.data.name, name);
  assert.equal(created.data.role, "Admin");
  const tenant_id = created.data.id;

  const tenants = await admin.GET("/api/tenants");
  const acme = tenants.data?.items.find((t) => t.name === "Acme");
  assert.ok(acme && tenants.data?.items.some((t) => t.id === tenant_id));
  const firstPage = await admin.GET("/api/tenants", { params: { query: { limit: 1 } } });
  assert.equal(firstPage.data?.items.length, 1);
  assert.ok(firstPage.data?.next_cursor, "more tenants follow");
  const secondPage = await admin.GET("/api/tenants", {
    params: { query: { limit: 1, cursor: firstPage.data.next_cursor } },
  });
  assert.notEqual(secondPage.data?.items[0]?.id, firstPage.data.items[0]?.id);
  const acmeMembers = await admin.GET("/api/tenants/{tenant_id}/members", {
    params: { path: { tenant_id: acme.id } },
  });
  const editor = acmeMembers.data?.items.find((m) => m.email === "editor@acme.example");
  assert.ok(editor, "the demo editor is a member of Acme");
  const role: Role = "Editor";
  const added = await admin.PUT("/api/tenants/{tenant_id}/members/{user_id}", {
    params: { path: { tenant_id, user_id: editor.user_id } },
    body: { role },
  });
  // Not a member yet: invited (no e-mail in the answer); a member once they accept.
  assert.equal(added.response.status, 202, JSON.stringify(added.error));
  assert.deepEqual(added.data, { tenant_id, user_id: editor.user_id, role: "Editor", status: "invited" });
  const invitee = await tokenClient("editor@acme.example", "acme-editor-demo");
  const invitations = await invitee.GET("/api/invitations");
  assert.equal(invitations.response.status, 200, JSON.stringify(invitations.error));
  const invitation = invitations.data?.items.find((i) => i.tenant_id === tenant_id);
  assert.equal(invitation?.tenant_name, name);
  assert.equal(invitation?.role, "Editor");
  assert.equal(invitation?.invited_by, me.data?.id);
  const accepted = await invitee.POST("/api/invitations/{tenant_id}/accept", {
    params: { path: { tenant_id } },
  });
  assert.equal(accepted.response.status, 200, JSON.stringify(accepted.error));
  assert.deepEqual(accepted.data, { tenant_id, tenant_name: name, role: "Editor" });

  const flows = (path: { tenant_id: string }) => ({ params: { path } });
  const one = (flow_id: string) => ({ params: { path: { tenant_id, flow_id } } });
  const flow = await admin.POST("/api/tenants/{tenant_id}/flows", {
    ...flows({ tenant_id }),
    body: { name: "Review", definition: { steps: ["draft", "review"] }, labels: ["review"] },
  });
  assert.equal(flow.response.status, 201, JSON.stringify(flow.error));
  assert.ok(flow.data);
  assert.deepEqual(flow.data.labels, ["review"]);
  assert.equal(flow.data.owner, me.data?.id, "the creator owns the flow");
  assert.deepEqual(flow.data.definition, { steps: ["draft", "review"] });
  const flow_id = flow.data.id;
  assert.ok(!Number.isNaN(Date.parse(flow.data.created_at)));

  const listed = await admin.GET("/api/tenants/{tenant_id}/flows", flows({ tenant_id }));
  assert.deepEqual(listed.data?.items.map((f) => f.id), [flow_id]);
  const read = await admin.GET("/api/tenants/{tenant_id}/flows/{flow_id}", one(flow_id));
  assert.equal(read.data?.name, "Review");
  const patched = await admin.PATCH("/api/tenants/{tenant_id}/flows/{flow_id}", {
    ...one(flow_id),
    body: { name: "Review v2" },
  });
  assert.equal(patched.response.status, 200, JSON.stringify(patched.error));
  assert.equal(patched.data?.name, "Review v2");
  assert.deepEqual(patched.data?.definition, { steps: ["draft", "review"] });
  const replaced = await admin.PUT("/api/tenants/{tenant_id}/flows/{flow_id}", {
    ...one(flow_id),
    body: { name: "Review v3", definition: { steps: [] } },
  });
  assert.equal(replaced.data?.name, "Review v3");
  assert.deepEqual(replaced.data?.labels, [], "a replacement without labels has none");
  const shared = await admin.PUT("/api/tenants/{tenant_id}/flows/{flow_id}/shares/{user_id}", {
    params: { path: { tenant_id, flow_id, user_id: editor.user_id } },
    body: { access: "edit" },
  });
  assert.equal(shared.response.status, 200, JSON.stringify(shared.error));
  assert.deepEqual(shared.data, { flow_id, user_id: editor.user_id, access: "edit" });
  const unshared = await admin.DELETE("/api/tenants/{tenant_id}/flows/{flow_id}/shares/{user_id}", {
    params: { path: { tenant_id, flow_id, user_id: editor.user_id } },
  });
  assert.equal(unshared.response.status, 204);

  // 403: the demo viewer is not a member of the new tenant; as Viewer in Acme it may not write.
  const viewer = await tokenClient("viewer@acme.example", "acme-viewer-demo");
  expectProblem(
    await viewer.GET("/api/tenants/{tenant_id}/flows", flows({ tenant_id })),
    403,
    "forbidden",
  );
  expectProblem(
    await viewer.POST("/api/tenants/{tenant_id}/flows", {
      ...flows({ tenant_id: acme.id }),
      body: { name: "Nope" },
    }),
    403,
    "forbidden",
  );
  // 404: a flow in a tenant the caller is not a member of looks like a missing one.
  expectProblem(
    await viewer.GET("/api/tenants/{tenant_id}/flows/{flow_id}", one(flow_id)),
    404,
    "not_found",
  );

  const deleted = await admin.DELETE("/api/tenants/{tenant_id}/flows/{flow_id}", one(flow_id));
  assert.equal(deleted.response.status, 204);
  expectProblem(
    await admin.GET("/api/tenants/{tenant_id}/flows/{flow_id}", one(flow_id)),
    404,
    "not_found",
  );
  const empty = await admin.GET("/api/tenants/{tenant_id}/flows", flows({ tenant_id }));
  assert.deepEqual(empty.data, { items: [], next_cursor: null });
  console.log("typescript client: login, token, tenant, member, flow CRUD and typed 401/403/404 ok");
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
