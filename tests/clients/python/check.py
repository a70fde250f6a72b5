"""Uses the Python client generated from openapi/openapi.json (openapi-python-client) as a user
would: log in, mint a token, create a tenant, invite a member who accepts, create/list/read/update/delete a flow,
and the typed errors 401, 403 and 404. Any surprise fails the run (assert, or UnexpectedStatus for
a status the document does not declare).

usage: check.py GENERATED_DIR BASE_URL
"""

import sys
from datetime import datetime
from uuid import UUID, uuid4

sys.path.insert(0, sys.argv[1])

from zygo_client import AuthenticatedClient, Client  # noqa: E402
from zygo_client.types import UNSET  # noqa: E402
from zygo_client.api.auth import get_me, login  # noqa: E402
from zygo_client.api.flows import (  # noqa: E402
    create_flow,
    delete_flow,
    get_flow,
    list_flows,
    replace_flow,
    share_flow,
    unshare_flow,
    update_flow,
)
from zygo_client.api.invitations import accept_invitation, list_invitations  # noqa: E402
from zygo_client.api.members import list_members, set_member_role  # noqa: E402
from zygo_client.api.tenants import create_tenant, get_tenant, list_tenants  # noqa: E402
from zygo_client.api.tokens import list_tokens, mint_token, revoke_token  # noqa: E402
from zygo_client.models import (  # noqa: E402
    Flow,
    FlowInput,
    FlowInputDefinition,
    FlowPatch,
    Invited,
    InvitationStatus,
    LoginRequest,
    Me,
    Membership,
    NewTenant,
    PageFlow,
    PageInvitation,
    PageIssuedToken,
    PageMember,
    PageTenantWithRole,
    Problem,
    RevokeRequest,
    RoleRequest,
    RoleRequestRole,
    Share,
    ShareAccess,
    ShareInput,
    Tenant,
    TenantWithRole,
    TokenResponse,
)

BASE = sys.argv[2]


def expect(response, status, kind):
    assert response.status_code == status, (
        f"expected {status}, got {response.status_code}: {response.content!r}"
    )
    assert isinstance(response.parsed, kind), f"expected {kind}, got {response.parsed!r}"
    return response.parsed


def expect_problem(response, status, code):
    problem = expect(response, status, Problem)
    assert response.headers["content-type"] == "application/problem+json"
    assert (problem.status, problem.code) == (status, code), problem
    assert problem.type_ == f"urn:zygo:problem:{code}", problem
    assert problem.title and problem.detail, problem


def token_client(email, password):
    """Logs in (session cookie), mints a token with the session, returns a token client."""
    browser = Client(base_url=BASE, raise_on_unexpected_status=True)
    me = expect(login.sync_detailed(client=browser, body=LoginRequest(email, password)), 200, Me)
    assert me.email == email and me.login_count >= 1 and me.current_tenant_id is not None, me
    # The same cookie jar, no token header: the session authenticates the mint.
    session = AuthenticatedClient(base_url=BASE, token="", raise_on_unexpected_status=True)
    session.set_httpx_client(browser.get_httpx_client())
    minted = expect(mint_token.sync_detailed(client=session, expiration=3600), 200, TokenResponse)
    assert minted.expires_in == 3600 and minted.token.count(".") == 2, minted
    return AuthenticatedClient(
        base_url=BASE,
        token=minted.token,
        prefix="",
        auth_header_name="token",
        raise_on_unexpected_status=True,
    )


def main():
    anonymous = Client(base_url=BASE, raise_on_unexpected_status=True)
    wrong = LoginRequest(email="admin@acme.example", password="not-the-password")
    expect_problem(login.sync_detailed(client=anonymous, body=wrong), 401, "login_failed")
    forged = AuthenticatedClient(
        base_url=BASE, token="not-a-jwt", prefix="", auth_header_name="token"
    )
    expect_problem(list_tenants.sync_detailed(client=forged), 401, "invalid_credentials")

    admin = token_client("admin@acme.example", "acme-admin-demo")
    me = expect(get_me.sync_detailed(client=admin), 200, Me)
    assert me.current_tenant_id is None, "tokens have no current tenant"
    assert {m.tenant_name: str(m.role) for m in me.memberships}.get("Acme") == "Admin", me

    name = f"Python client {uuid4().hex[:8]}"
    tenant = expect(create_tenant.sync_detailed(client=admin, body=NewTenant(name)), 201, TenantWithRole)
    assert (tenant.name, tenant.role) == (name, "Admin") and isinstance(tenant.id, UUID), tenant
    fetched = expect(get_tenant.sync_detailed(tenant.id, client=admin), 200, Tenant)
    assert (fetched.id, fetched.name) == (tenant.id, name), fetched
    mine = expect(list_tenants.sync_detailed(client=admin), 200, PageTenantWithRole).items
    assert tenant.id in [t.id for t in mine], mine
    # One tenant a page: the cursor of each page leads to the next, and the pages add up.
    paged, cursor = [], UNSET
    for _ in range(len(mine) + 1):
        page = expect(list_tenants.sync_detailed(client=admin, limit=1, cursor=cursor), 200, PageTenantWithRole)
        paged += page.items
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert [t.id for t in paged] == [t.id for t in mine], paged
    expect_problem(list_tenants.sync_detailed(client=admin, limit=0), 400, "bad_request")

    acme = next(t for t in mine if t.name == "Acme")
    viewer = next(
        m
        for m in expect(list_members.sync_detailed(acme.id, client=admin), 200, PageMember).items
        if m.email == "viewer@acme.example"
    )
    # Not a member yet: invited (no e-mail in the answer); a member once she accepts.
    invited = expect(
        set_member_role.sync_detailed(
            tenant.id, viewer.user_id, client=admin, body=RoleRequest(RoleRequestRole.VIEWER)
        ),
        202,
        Invited,
    )
    assert (invited.tenant_id, invited.user_id, invited.role, invited.status) == (
        tenant.id,
        viewer.user_id,
        "Viewer",
        InvitationStatus.INVITED,
    ), invited
    viewer_client = token_client("viewer@acme.example", "acme-viewer-demo")
    pending = expect(list_invitations.sync_detailed(client=viewer_client), 200, PageInvitation).items
    assert [(i.tenant_id, i.tenant_name, i.role, i.invited_by) for i in pending] == [
        (tenant.id, name, "Viewer", me.id)
    ], pending
    joined = expect(accept_invitation.sync_detailed(tenant.id, client=viewer_client), 200, Membership)
    assert (joined.tenant_id, joined.tenant_name, joined.role) == (tenant.id, name, "Viewer"), joined
    members = expect(list_members.sync_detailed(tenant.id, client=admin), 200, PageMember).items
    assert sorted(m.role for m in members) == ["Admin", "Viewer"], members

    definition = FlowInputDefinition.from_dict({"steps": ["draft", "review"], "limit": 3})
    flow = expect(
        create_flow.sync_detailed(
            tenant.id,
            client=admin,
            body=FlowInput(name="Review", definition=definition, labels=["review", "q3"]),
        ),
        201,
        Flow,
    )
    assert flow.name == "Review" and isinstance(flow.created_at, datetime), flow
    assert flow.labels == ["q3", "review"] and flow.owner == me.id, flow
    assert flow.definition.to_dict() == {"steps": ["draft", "review"], "limit": 3}, flow
    listed = expect(list_flows.sync_detailed(tenant.id, client=admin), 200, PageFlow).items
    assert [f.id for f in listed] == [flow.id], listed
    read = expect(get_flow.sync_detailed(tenant.id, flow.id, client=admin), 200, Flow)
    assert (read.id, read.name) == (flow.id, "Review"), read
    patched = expect(
        update_flow.sync_detailed(tenant.id, flow.id, client=admin, body=FlowPatch(name="Review v2")),
        200,
        Flow,
    )
    assert patched.name == "Review v2" and patched.definition.to_dict() == definition.to_dict()
    replaced = expect(
        replace_flow.sync_detailed(tenant.id, flow.id, client=admin, body=FlowInput(name="Review v3")),
        200,
        Flow,
    )
    assert replaced.name == "Review v3" and replaced.definition.to_dict() == {}, replaced

    # 403: the viewer may read the tenant's flows but not write them.
    seen = expect(list_flows.sync_detailed(tenant.id, client=viewer_client), 200, PageFlow).items
    assert [f.name for f in seen] == ["Review v3"], seen
    # A confidential flow is hidden from the viewer (list and read) until it is shared with her.
    hidden = expect(
        update_flow.sync_detailed(tenant.id, flow.id, client=admin, body=FlowPatch(labels=["confidential"])),
        200,
        Flow,
    )
    assert hidden.labels == ["confidential"], hidden
    assert expect(list_flows.sync_detailed(tenant.id, client=viewer_client), 200, PageFlow).items == []
    expect_problem(get_flow.sync_detailed(tenant.id, flow.id, client=viewer_client), 404, "not_found")
    share = expect(
        share_flow.sync_detailed(
            tenant.id, flow.id, viewer.user_id, client=admin, body=ShareInput(ShareAccess.READ)
        ),
        200,
        Share,
    )
    assert (share.user_id, share.access) == (viewer.user_id, ShareAccess.READ), share
    seen = expect(list_flows.sync_detailed(tenant.id, client=viewer_client), 200, PageFlow).items
    assert [f.name for f in seen] == ["Review v3"], seen
    expect_problem(
        share_flow.sync_detailed(
            tenant.id, flow.id, uuid4(), client=admin, body=ShareInput(ShareAccess.EDIT)
        ),
        400,
        "bad_request",
    )
    expect_problem(
        create_flow.sync_detailed(tenant.id, client=viewer_client, body=FlowInput(name="Nope")),
        403,
        "forbidden",
    )
    expect_problem(delete_flow.sync_detailed(tenant.id, flow.id, client=viewer_client), 403, "forbidden")

    unshared = unshare_flow.sync_detailed(tenant.id, flow.id, viewer.user_id, client=admin)
    assert unshared.status_code == 204, unshared
    deleted = delete_flow.sync_detailed(tenant.id, flow.id, client=admin)
    assert deleted.status_code == 204 and deleted.content == b"", deleted
    # 404: the deleted flow, and a flow that never existed, are the same typed error.
    expect_problem(get_flow.sync_detailed(tenant.id, flow.id, client=admin), 404, "not_found")
    expect_problem(get_flow.sync_detailed(tenant.id, uuid4(), client=admin), 404, "not_found")
    assert expect(list_flows.sync_detailed(tenant.id, client=admin), 200, PageFlow).items == []

    # Named, read-only tokens: listed (never the token itself), refused on writes, revoked by jti.
    reader = expect(
        mint_token.sync_detailed(client=admin, name="python reader", read_only=True), 200, TokenResponse
    )
    listed = expect(list_tokens.sync_detailed(client=admin, limit=500), 200, PageIssuedToken).items
    mine = [t for t in listed if t.name == "python reader"]
    assert len(mine) == 1 and mine[0].read_only and mine[0].minted_from.value == "token", listed
    reader_client = AuthenticatedClient(
        base_url=BASE, token=reader.token, prefix="", auth_header_name="token", raise_on_unexpected_status=True
    )
    expect(list_flows.sync_detailed(tenant.id, client=reader_client), 200, PageFlow)
    expect_problem(
        create_flow.sync_detailed(tenant.id, client=reader_client, body=FlowInput(name="Nope")), 403, "forbidden"
    )
    revoked = revoke_token.sync_detailed(client=admin, body=RevokeRequest(jti=mine[0].jti))
    assert revoked.status_code == 204, revoked
    expect_problem(list_flows.sync_detailed(tenant.id, client=reader_client), 401, "token_revoked")
    print("python client: login, token, tenant, member, flow CRUD, token list and typed 401/403/404 ok")


if __name__ == "__main__":
    main()
