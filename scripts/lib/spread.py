"""The spread tenant of scripts/bench: 60 Viewers, 30 Editors and 10 Admins, about 2,000 flows
created by the Editors and Admins with 0-3 labels each (never "confidential", so every member reads
every flow) and shared with 0-2 members. Users and memberships are made with the CLI, flows and
shares through the API of the running server.

SPREAD_MEMBERS and SPREAD_FLOWS scale it (default 100 and 2,000; the roles keep their 60/30/10
shares): the memory figure of BENCHMARKS.md uses 1,000 members and 100,000 flows.

usage: spread.py ZYGO BASE WORKDIR [CLI ARGS...]   writes WORKDIR/spread-users and spread-flows
"""
import http.client
import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

zygo, base, work, db_args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
rng = random.Random(26)
PASSWORD = "spread-bench-password"
MEMBERS = int(os.environ.get("SPREAD_MEMBERS", "100"))
ROLES = (["Viewer"] * (MEMBERS * 6 // 10) + ["Editor"] * (MEMBERS * 3 // 10)
         + ["Admin"] * (MEMBERS - MEMBERS * 6 // 10 - MEMBERS * 3 // 10))
LABELS = ["finance", "ops", "draft", "q3", "eu", "us"]
FLOWS = int(os.environ.get("SPREAD_FLOWS", "2000"))


local = threading.local()


class Refused(Exception):
    """A reply that was not 2xx."""


def call(method, path, body=None, headers={}):
    # One kept-alive connection per thread: 100,000 flows are too many for a connection each.
    if getattr(local, "conn", None) is None:
        url = urllib.parse.urlsplit(base)
        local.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    data = json.dumps(body).encode() if body is not None else None
    try:
        local.conn.request(method, path, body=data,
                           headers={"content-type": "application/json", **headers})
        reply = local.conn.getresponse()
        payload = reply.read()
    except (http.client.HTTPException, OSError):
        local.conn.close()
        local.conn = None
        raise
    if reply.status >= 300:
        raise Refused(f"{method} {path}: {reply.status} {payload[:200]!r}")
    return reply, json.loads(payload or b"null")


def cli(*args):
    # SQLite answers "database is locked" to a writer while another writes: try again.
    for attempt in range(20):
        done = subprocess.run([zygo, *args, *db_args], capture_output=True, text=True)
        if done.returncode == 0:
            return done.stdout.strip()
        if "locked" not in done.stderr:
            break
        time.sleep(0.05 * (attempt + 1))
    sys.exit(f"zygo {' '.join(args)}: {done.stderr.strip()}")


emails = [f"spread-{n}@bench.example" for n in range(len(ROLES))]
with ThreadPoolExecutor(2) as pool:
    list(pool.map(lambda e: cli("user", "add", e, "--password", PASSWORD), emails))


def login(email):
    reply, _ = call("POST", "/api/login", {"email": email, "password": PASSWORD})
    return reply.getheader("set-cookie").split(";")[0]


# The first Admin creates the tenant; the others join it directly.
owner_cookie = login(emails[-1])
_, tenant = call("POST", "/api/tenants", {"name": "Spread"}, {"cookie": owner_cookie})
tenant = tenant["id"]
with ThreadPoolExecutor(2) as pool:
    list(pool.map(lambda pair: cli("member", "set", tenant, pair[0], pair[1]),
                  list(zip(emails, ROLES))[:-1]))


def member(email):
    cookie = login(email)
    _, me = call("GET", "/api/me", headers={"cookie": cookie})
    if me.get("current_tenant_id") != tenant:
        call("POST", f"/session/{tenant}", headers={"cookie": cookie})
    _, me = call("GET", "/api/me", headers={"cookie": cookie})
    _, minted = call("GET", "/api/token?expiration=3600", headers={"cookie": cookie})
    return me["id"] if "id" in me else me["user"]["id"], minted["token"], cookie


with ThreadPoolExecutor(4) as pool:
    members = list(pool.map(member, emails))
writers = [m for m, role in zip(members, ROLES) if role != "Viewer"]


def flow(n):
    local = random.Random(n)
    _, token, _ = local.choice(writers)
    labels = local.sample(LABELS, local.randint(0, 3))
    _, created = call("POST", f"/api/tenants/{tenant}/flows",
                      {"name": f"flow {n}", "definition": {"n": n}, "labels": labels},
                      {"token": token})
    for user, _, _ in local.sample(members, local.randint(0, 2)):
        access = local.choice(["read", "edit"])
        try:
            call("PUT", f"/api/tenants/{tenant}/flows/{created['id']}/shares/{user}",
                 {"access": access}, {"token": token})
        except Refused:
            pass  # an Editor may share only what it may share; the flow stays unshared
    return f"/api/tenants/{tenant}/flows/{created['id']}"


with ThreadPoolExecutor(4) as pool:
    paths = list(pool.map(flow, range(FLOWS)))
with open(f"{work}/spread-users", "w") as out:
    for _, token, cookie in members:
        out.write(f"{token} {cookie}\n")
with open(f"{work}/spread-flows", "w") as out:
    out.write(f"/api/tenants/{tenant}/flows\n")
    out.write("".join(p + "\n" for p in paths))
print(tenant)
