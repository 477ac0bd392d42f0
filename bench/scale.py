#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`make bench-scale`: how one process's cost grows with the history and with the number of users.

History: for each size N (CHATTO_BENCH_SCALE_SIZES, default 100000,1000000; add 3000000 for the issue's largest
row, which needs about 3 GB of RAM and a few minutes), a fresh chatto with embedded NATS gets N messages appended
straight to CHATTO_EVENTS in the format the product writes (bench/evpub, one room), waits until its model has
them, then (once the newest read-model snapshot is within 20,000 events of the end, as in steady use; the table says how
many events the restart replayed after it) is restarted: time from start to /readyz 200, RSS when ready (and the
same for a replica: a second process joining that NATS in external mode, as a scale-up adds one), and
GetRoomEvents latency (50 per page,
keep-alive, one connection) for the newest page and for a page 1,000,000 messages back (or the oldest page), and
how long the first request for that deep page took. CHATTO_BENCH_SCALE_REACTED=0.2 has one message in five
reacted to (a reaction.added event right after its post), as teams do.

Users: CHATTO_BENCH_SCALE_USERS (default 10000) distinct accounts, each in #general and in 3 of 200 other rooms,
each holding one WebSocket (bench/fanout with one token per socket); then 100 posts/s (CHATTO_BENCH_SCALE_RATE)
for 60 s (CHATTO_BENCH_SCALE_SECONDS) going round all 201 rooms. Reports deliveries made against deliveries due
(every member of a room holds a socket), post-to-frame latency, chatto's RSS before the users, with them connected
and at the end, and chatto's and nats-server's CPU while posting.

Rooms: CHATTO_BENCH_SCALE_ROOMS (default 1000) rooms of CHATTO_BENCH_SCALE_ROOM_MESSAGES (500) messages each, appended
straight to the stream, four in five of them replies in threads of four; one room in ten had a message a minute
ago, the others last a day ago. The process's
in-memory and cold message counts and RSS once it holds them all (35 s later), and after a restart from a snapshot
written after that (20,000 more messages appended to an active room make one), with the default
core.resident_idle_after (quiet rooms keep a page, quiet threads no plain reply) and with 0 (every room keeps
core.resident_messages, every thread its replies).
CHATTO_BENCH_SCALE_PARTS=history,users,rooms picks (default history,users).
"""
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "integration"))
from harness import BUILD, Chatto, Client, FAST_AUTH, wait_for  # noqa: E402

SIZES = [int(x) for x in os.environ.get("CHATTO_BENCH_SCALE_SIZES", "100000,1000000").split(",") if x]
USERS = int(os.environ.get("CHATTO_BENCH_SCALE_USERS", "10000"))
RATE = int(os.environ.get("CHATTO_BENCH_SCALE_RATE", "100"))
SECONDS = int(os.environ.get("CHATTO_BENCH_SCALE_SECONDS", "60"))
PARTS = os.environ.get("CHATTO_BENCH_SCALE_PARTS", "history,users").split(",")
ROOMS, ROOMS_EACH = 200, 3
MANY_ROOMS = int(os.environ.get("CHATTO_BENCH_SCALE_ROOMS", "1000"))
ROOM_MESSAGES = int(os.environ.get("CHATTO_BENCH_SCALE_ROOM_MESSAGES", "500"))
REACTED = float(os.environ.get("CHATTO_BENCH_SCALE_REACTED", "0"))
DEEP = 1000000
PAGES = 300
R = "chatto.api.v1.RoomService/"


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read())[1])


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def nats_creds(c):
    """The embedded NATS's URL and token (as bench/run.py reads them)."""
    url = open(os.path.join(c.data_dir, "run", "client.url")).read().strip()
    token = re.search(r'auth_token = "([^"]+)"', open(os.path.join(c.data_dir, "secrets.ini")).read())[1]
    return url, token


def seed(c, room, uid, n):
    """n msg.posted events of room, oldest first, straight into the stream (the product's event format)."""
    url, token = nats_creds(c)
    p = subprocess.Popen([os.path.join(BUILD, "bench", "evpub"), url, token], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    now = int(time.time() * 1000)
    words = ["deploy", "review", "lunch", "standup", "build", "release", "ticket", "meeting", "coffee", "docs"]
    for i in range(n):
        mid = "sm%018d" % i
        at = now - (n - i) * 10
        body = "message %d about the %s and the %s" % (i, words[i % 10], words[(i * 7) % 10])
        ev = {"type": "msg.posted", "id": "se%018d" % i, "actor": uid, "at": at,
              "msg": {"id": mid, "author": uid, "body": body, "createdAt": at}}
        p.stdin.write("chatto.ev.%s.msg.%s\t%s\n" % (room, mid, json.dumps(ev)))
        if REACTED and i % max(1, round(1 / REACTED)) == 0:
            ev = {"type": "reaction.added", "id": "sr%018d" % i, "actor": uid, "at": at + 1, "msgId": mid,
                  "emoji": "\U0001F44D"}
            p.stdin.write("chatto.ev.%s.msg.%s\t%s\n" % (room, mid, json.dumps(ev)))
    p.stdin.close()
    out = p.stdout.read()
    if p.wait() != 0:
        raise SystemExit("evpub failed")
    return int(out)


class Api:
    """One keep-alive connection with a bearer token."""

    def __init__(self, port, token):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Content-Type": "application/json", "Authorization": "Bearer " + token}

    def call(self, method, body):
        for attempt in (0, 1):
            try:
                self.conn.request("POST", "/api/connect/" + method, json.dumps(body), self.headers)
                r = self.conn.getresponse()
                data = r.read()
                break
            except (http.client.HTTPException, OSError):
                # a connection the server closed (or one left mid-request): a fresh one, once
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if attempt:
                    raise
        if r.status != 200:
            raise SystemExit("%s -> %d %s" % (method, r.status, data[:300]))
        return json.loads(data)


def page_latency(api, room, before):
    """p50 and p99 ms of PAGES requests for the same page, how many events it had, and the first request's ms."""
    lat = []
    body = {"roomId": room, "limit": 50}
    if before:
        body["before"] = before
    for _ in range(PAGES):
        t = time.perf_counter()
        r = api.call(R + "GetRoomEvents", body)
        lat.append((time.perf_counter() - t) * 1000)
    first = lat[0]
    lat.sort()
    return lat[len(lat) // 2], lat[int(len(lat) * 0.99)], len(r["page"]["events"]), first


def start_timed(proc, what):
    """Start proc and return the seconds until its /readyz answers 200."""
    t0 = time.time()
    proc.start(wait_ready=False)

    def ready():
        if proc.proc.poll() is not None:
            raise SystemExit("chatto exited:\n" + proc.stderr()[-3000:])
        try:
            return proc.get("/readyz", timeout=3).status == 200
        except OSError:
            return False
    wait_for(ready, 1800, what, interval=0.01)
    return time.time() - t0


def history(n):
    # CHATTO_BENCH_ARGS: extra chatto flags (as bench/run.py), e.g. "--search-provider-enabled=false"
    c = Chatto(args=FAST_AUTH + os.environ.get("CHATTO_BENCH_ARGS", "").split())
    try:
        c.start()
        reg = Client(c).register("scale", token=True).json()
        token, uid = reg["token"], reg["user"]["id"]
        me = Api(c.port, token)
        room = me.call(R + "CreateRoom", {"name": "history"})["room"]["id"]
        t0 = time.time()
        seed(c, room, uid, n)
        t_seed = time.time() - t0
        last = "sm%018d" % (n - 1)

        def caught_up():
            try:
                ev = me.call(R + "GetRoomEvents", {"roomId": room, "limit": 1})["page"]["events"]
            except SystemExit as e:  # 503 while the model is far behind the appends: ask again
                if " 503 " in str(e):
                    return False
                raise
            return ev and last in json.dumps(ev[-1])
        wait_for(caught_up, 1800, "chatto's model to hold all %d messages" % n, interval=0.5)
        live_rss = rss_kib(c.pid)
        # as in steady use: the newest snapshot is at most core.projection_snapshot_events (20,000) behind. While
        # the appends ran faster than snapshots could be written, it may be further behind: give the writer a
        # moment to catch up (the table says how many events the restart replayed after it)
        top0 = int(me.call(R + "GetRoomEvents", {"roomId": room, "limit": 1})["page"]["events"][-1]["cursor"])

        def fresh_snapshot():
            got = [int(x) for x in re.findall(r"read-model snapshot at event (\d+) written", c.stderr())]
            return got and max(got) + 20000 >= top0
        try:
            wait_for(fresh_snapshot, 180, "a snapshot within 20,000 events of the end", interval=0.5)
        except Exception:  # noqa: B902 - reported by the tail count below
            pass
        c.stop()
        t_ready = start_timed(c, "chatto ready after a restart with %d messages" % n)
        ready_rss = rss_kib(c.pid)
        # what it started from: the read-model snapshot (core.projection_snapshots) and the events after it
        snap = re.findall(r"loaded from the snapshot at event (\d+) \((\d+) bytes, (\d+) ms", c.stderr())
        writes = re.findall(r"snapshot at event \d+ written: (\d+) bytes \((\d+) ms under the model's read lock",
                            c.stderr())
        # a replica joining: another process on the same NATS (external mode), as a scale-up adds one; it does not
        # wait for nats-server to recover the stream (the restart above does)
        url, ntoken = nats_creds(c)
        rep = Chatto(embedded=False, config=open(os.path.join(c.data_dir, "secrets.ini")).read(),
                     env={"CHATTO_NATS_EMBEDDED_ENABLED": "false", "CHATTO_NATS_CLIENT_URL": url,
                          "CHATTO_NATS_CLIENT_AUTH_METHOD": "token", "CHATTO_NATS_CLIENT_TOKEN": ntoken},
                     args=FAST_AUTH + ["--search-provider-enabled=false"])
        try:
            t_rep = start_timed(rep, "a replica ready with %d messages" % n)
            rep_rss = rss_kib(rep.pid)
        finally:
            rep.cleanup()
        me = Api(c.port, token)
        # in steady state: the search index has caught up with the stream (while it indexes, it shares the cores)
        if "--search-provider-enabled=false" not in os.environ.get("CHATTO_BENCH_ARGS", ""):
            wait_for(lambda: me.call("chatto.api.v1.MessageSearchService/GetStatus", {})["state"] ==
                     "MESSAGE_SEARCH_STATE_READY", 1800, "the search index to catch up", interval=0.5)
        newest = me.call(R + "GetRoomEvents", {"roomId": room, "limit": 1})["page"]["events"][-1]
        top = int(newest["cursor"])
        depth = min(DEEP, n - 100)
        recent = page_latency(me, room, None)
        deep = page_latency(me, room, str(top - depth))
        out = dict(n=n, seed_s=t_seed, ready_s=t_ready, ready_rss=ready_rss, live_rss=live_rss, recent=recent,
                   deep=deep, depth=depth, replica_s=t_rep, replica_rss=rep_rss)
        if snap:
            seq, size, ms = (int(x) for x in snap[-1])
            out.update(snap_mb=size / 1e6, snap_load_ms=ms, snap_tail=max(0, top - seq))
        if writes:
            out.update(snap_write_lock_ms=int(writes[-1][1]))
        return out
    finally:
        c.cleanup()


def pool_map(fn, items, threads=8):
    """fn over items on a few threads (each with its own connections); results in order."""
    out = [None] * len(items)
    it = iter(range(len(items)))
    lock = threading.Lock()
    errors = []

    def work():
        while not errors:
            with lock:
                i = next(it, None)
            if i is None:
                return
            try:
                out[i] = fn(items[i])
            except BaseException as e:  # noqa: B902 - reported below
                errors.append(e)
    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]
    return out


def register_users(port, n):
    """Accounts u00000.. on a few threads (one keep-alive connection each); their API tokens, in order."""
    local = threading.local()

    def register(i):
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        body = json.dumps({"login": "u%05d" % i, "password": "correct horse battery", "issueToken": True})
        local.conn.request("POST", "/auth/register", body, {"Content-Type": "application/json"})
        r = local.conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise SystemExit("register u%05d -> %d %s" % (i, r.status, data[:200]))
        return json.loads(data)["token"]
    return pool_map(register, list(range(n)))


def users(n):
    c = Chatto(args=FAST_AUTH + ["--realtime-max-connections", "30000", "--webserver-max-connections", "40000"])
    fan = None
    try:
        c.start()
        nats = wait_for(c.nats_child, 10, "the embedded nats-server child")
        rss0 = rss_kib(c.pid)
        t0 = time.time()
        tokens = register_users(c.port, n)
        t_reg = time.time() - t0
        owner = Api(c.port, tokens[0])
        rooms = [owner.call(R + "CreateRoom", {"name": "team-%03d" % k})["room"]["id"] for k in range(ROOMS)]
        rng = random.Random(7)
        picks = [rng.sample(range(ROOMS), ROOMS_EACH) for _ in range(n)]
        members = [0] * ROOMS
        for i, ks in enumerate(picks):
            for k in ks:
                if i != 0:  # the creator is a member already
                    members[k] += 1
        members = [m + 1 for m in members]
        t0 = time.time()

        def join(i):
            api = Api(c.port, tokens[i])
            for k in picks[i]:
                if i != 0:
                    api.call(R + "JoinRoom", {"roomId": rooms[k]})
            api.conn.close()
        pool_map(join, list(range(n)))
        t_join = time.time() - t0
        listed = Api(c.port, tokens[1]).call(R + "ListRooms", {})
        general_members = next(int(x["memberCount"]) for x in listed["rooms"] if x["room"]["id"] == "general")
        rss_users = rss_kib(c.pid)
        tokfile = os.path.join(c.dir, "tokens.txt")
        with open(tokfile, "w") as f:
            f.write("\n".join(tokens) + "\n")
        order = ["general"] + rooms
        fan = subprocess.Popen([os.path.join(BUILD, "bench", "fanout"), "ws", "127.0.0.1", str(c.port), str(n),
                                str(RATE), str(SECONDS), "@" + tokfile, ",".join(order)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        t0 = time.time()
        line = fan.stdout.readline()
        t_connect = time.time() - t0
        if not line.startswith("POSTING"):
            raise SystemExit("fanout: %r %s" % (line, fan.stderr.read()[-2000:]))
        connected = int(line.split()[1])
        rss_connected = rss_kib(c.pid)
        cpu0 = (cpu_seconds(c.pid), cpu_seconds(nats), time.time())
        out, err = fan.communicate(timeout=SECONDS + 300)
        cpu1 = (cpu_seconds(c.pid), cpu_seconds(nats), time.time())
        fan = None
        res = dict(kv.split("=") for kv in re.search(r"RESULT .*", out)[0].split()[1:])
        sent = int(res["sent"])
        due = sum((general_members if k == 0 else members[k - 1]) for k in (j % len(order) for j in range(sent)))
        if c.proc.poll() is not None:
            raise SystemExit("chatto exited during the run with %s:\n%s" % (c.proc.returncode, c.stderr()[-4000:]))
        wall = cpu1[2] - cpu0[2]
        return dict(n=n, t_reg=t_reg, t_join=t_join, t_connect=t_connect, connected=connected, rss0=rss0,
                    rss_users=rss_users, rss_connected=rss_connected, rss_end=rss_kib(c.pid), res=res, due=due,
                    chatto_cpu=100 * (cpu1[0] - cpu0[0]) / wall, nats_cpu=100 * (cpu1[1] - cpu0[1]) / wall,
                    general_members=general_members, fan_err=err[-500:])
    finally:
        if fan is not None and fan.poll() is None:
            fan.kill()
            fan.wait()
        c.cleanup()


def model_counts(c):
    """(messages in memory, messages out of memory) from the process's metrics."""
    port = re.findall(r"metrics: listening on [\d.]+:(\d+)(/\S*)", c.stderr())[-1]
    conn = http.client.HTTPConnection("127.0.0.1", int(port[0]), timeout=30)
    conn.request("GET", port[1])
    text = conn.getresponse().read().decode()
    conn.close()
    got = {k: int(float(v)) for k, v in re.findall(r"^(chatto_model_(?:cold_)?messages) (\S+)$", text, re.M)}
    cold = got.get("chatto_model_cold_messages", 0)
    return got.get("chatto_model_messages", 0) - cold, cold  # (the first counts every message the model knows)


def rooms(idle_after):
    """MANY_ROOMS rooms of ROOM_MESSAGES messages, one in ten active: memory with core.resident_idle_after."""
    c = Chatto(args=FAST_AUTH + ["--metrics-enabled=true", "--metrics-port", "0", "--core-resident-idle-after",
                                 idle_after] + os.environ.get("CHATTO_BENCH_ARGS", "").split())
    try:
        c.start()
        reg = Client(c).register("rooms", token=True).json()
        token, uid = reg["token"], reg["user"]["id"]
        me = Api(c.port, token)
        ids = [me.call(R + "CreateRoom", {"name": "room %04d" % i})["room"]["id"] for i in range(MANY_ROOMS)]
        url, nats_token = nats_creds(c)
        p = subprocess.Popen([os.path.join(BUILD, "bench", "evpub"), url, nats_token], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
        now = int(time.time() * 1000)
        for k, room in enumerate(ids):
            newest = now - (60000 if k % 10 == 0 else 86400000)
            for i in range(ROOM_MESSAGES):
                mid = "rm%06d%012d" % (k, i)
                at = newest - (ROOM_MESSAGES - 1 - i) * 1000
                ev = {"type": "msg.posted", "id": "re%06d%012d" % (k, i), "actor": uid, "at": at,
                      "msg": {"id": mid, "author": uid, "body": "message %d of room %d" % (i, k), "createdAt": at}}
                if i % 5:  # four in five are replies in a thread (its root: the last top-level one)
                    ev["msg"]["threadRoot"] = "rm%06d%012d" % (k, i - i % 5)
                p.stdin.write("chatto.ev.%s.msg.%s\t%s\n" % (room, mid, json.dumps(ev)))
        p.stdin.close()
        p.stdout.read()
        if p.wait() != 0:
            raise SystemExit("evpub failed")
        last = "rm%06d%012d" % (MANY_ROOMS - 1, (ROOM_MESSAGES - 1) // 5 * 5)  # (the newest top-level one)

        def caught_up():
            try:
                ev = me.call(R + "GetRoomEvents", {"roomId": ids[-1], "limit": 1})["page"]["events"]
            except SystemExit as e:
                if " 503 " in str(e):
                    return False
                raise
            return ev and last in json.dumps(ev[-1])
        wait_for(caught_up, 1800, "the model to hold every room's messages", interval=0.5)
        time.sleep(35)  # the eraser's sweep shrinks the rooms that went quiet (every 2 s) and their threads (30 s)
        live = dict(rss=rss_kib(c.pid), counts=model_counts(c))
        # as in steady use, the restart starts from a snapshot written after that (one comes every 20,000 events:
        # append as many to the first, active room), not from one written while every thread was new
        snaps = len(re.findall(r"read-model snapshot at event \d+ written", c.stderr()))
        p = subprocess.Popen([os.path.join(BUILD, "bench", "evpub"), url, nats_token], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
        for i in range(20000):
            mid = "rx%018d" % i
            at = int(time.time() * 1000) - 20000 + i
            ev = {"type": "msg.posted", "id": "rf%018d" % i, "actor": uid, "at": at,
                  "msg": {"id": mid, "author": uid, "body": "more %d" % i, "createdAt": at}}
            p.stdin.write("chatto.ev.%s.msg.%s\t%s\n" % (ids[0], mid, json.dumps(ev)))
        p.stdin.close()
        p.stdout.read()
        if p.wait() != 0:
            raise SystemExit("evpub failed")
        wait_for(lambda: len(re.findall(r"read-model snapshot at event \d+ written", c.stderr())) > snaps, 300,
                 "a snapshot after the sweep")
        c.stop()
        start_timed(c, "chatto ready after a restart with %d rooms" % MANY_ROOMS)
        time.sleep(5)
        return dict(idle_after=idle_after, live=live, ready=dict(rss=rss_kib(c.pid), counts=model_counts(c)))
    finally:
        c.cleanup()


def on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def main():
    signal.signal(signal.SIGTERM, on_sigterm)
    version = open(os.path.join(HERE, "..", "VERSION")).read().strip()
    if "history" in PARTS:
        rows = []
        for n in SIZES:
            rows.append(history(n))
            print("  %d messages: %r" % (n, rows[-1]), flush=True)
        print("\nChatto %s scale: history (one room%s; %d cores shared with nats-server; load average %.2f)"
              % (version, ", one message in %d reacted to" % round(1 / REACTED) if REACTED else "", os.cpu_count(),
                 os.getloadavg()[0]))
        fmt = "%10s %9s %10s %9s %11s %11s %9s %13s %19s"
        print(fmt % ("messages", "append s", "ready s", "RSS MB", "replica", "replica", "RSS live", "newest page",
                     "deep page"))
        print(fmt % ("", "(evpub)", "(restart)", "(ready)", "ready s", "RSS MB", "MB", "p50/p99 ms",
                     "p50/p99 ms (depth)"))
        for r in rows:
            print(fmt % (r["n"], "%.1f" % r["seed_s"], "%.2f" % r["ready_s"], "%.0f" % (r["ready_rss"] / 1024),
                         "%.2f" % r["replica_s"], "%.0f" % (r["replica_rss"] / 1024),
                         "%.0f" % (r["live_rss"] / 1024), "%.2f/%.2f" % r["recent"][:2],
                         "%.2f/%.2f (%d)" % (r["deep"][0], r["deep"][1], r["depth"])))
        for r in rows:
            print("  %d: the first request for the deep page took %.2f ms" % (r["n"], r["deep"][3]))
        for r in rows:
            if "snap_mb" in r:
                print("  %d: started from a %.1f MB read-model snapshot (loaded in %d ms) and %d events after it%s"
                      % (r["n"], r["snap_mb"], r["snap_load_ms"], r["snap_tail"],
                         "; writing the last one held the model's read lock %d ms" % r["snap_write_lock_ms"]
                         if "snap_write_lock_ms" in r else ""))
            else:
                print("  %d: no read-model snapshot was used: the whole stream was replayed" % r["n"])
        print("restart: the embedded nats-server recovers the stream first; replica: another process joining the same "
              "NATS (external mode, search off)")
        print("goals: RSS <= 64 MB and ready <= 1 s at 3M messages; newest page p99 <= 5 ms, 1M back <= 20 ms")
    if "rooms" in PARTS:
        rows = [rooms("15m"), rooms("0")]
        print("\nChatto %s scale: %d rooms of %d messages (4 in 5 thread replies), one in ten active (load %.2f)"
              % (version, MANY_ROOMS, ROOM_MESSAGES, os.getloadavg()[0]))
        fmt = "%-28s %12s %12s %9s %12s %12s %9s"
        print(fmt % ("core.resident_idle_after", "in memory", "cold", "RSS MB", "in memory", "cold", "RSS MB"))
        print(fmt % ("", "(live)", "(live)", "(live)", "(restart)", "(restart)", "(restart)"))
        for r in rows:
            live, ready = r["live"], r["ready"]
            print(fmt % (r["idle_after"], live["counts"][0], live["counts"][1], "%.0f" % (live["rss"] / 1024),
                         ready["counts"][0], ready["counts"][1], "%.0f" % (ready["rss"] / 1024)))
    if "users" in PARTS:
        u = users(USERS)
        res = u["res"]
        print("\nChatto %s scale: %d distinct users, each in #general (%s members) and %d of %d rooms, one WebSocket "
              "each; %d posts/s for %d s round %d rooms (load average %.2f)"
              % (version, u["n"], u["general_members"], ROOMS_EACH, ROOMS, RATE, SECONDS, ROOMS + 1,
                 os.getloadavg()[0]))
        print("  set-up: %d registrations in %.0f s, %d joins in %.0f s; %d of %d sockets ready after %.1f s"
              % (u["n"], u["t_reg"], u["n"] * ROOMS_EACH, u["t_join"], u["connected"], u["n"], u["t_connect"]))
        print("  deliveries: %s of %d due (%.1f%%), posts sent %s; post-to-frame p50 %s ms, p99 %s ms, max %s ms; "
              "sockets closed %s, refused %s"
              % (res["delivered"], u["due"], 100.0 * int(res["delivered"]) / max(u["due"], 1), res["sent"],
                 res["p50_ms"], res["p99_ms"], res["max_ms"], res["closed"], res["refused"]))
        print("  chatto RSS: %.0f MB empty, %.0f MB with the accounts, %.0f MB with every socket connected "
              "(%.1f KiB per connected user), %.0f MB at the end"
              % (u["rss0"] / 1024, u["rss_users"] / 1024, u["rss_connected"] / 1024,
                 (u["rss_connected"] - u["rss_users"]) / max(u["connected"], 1), u["rss_end"] / 1024))
        print("  CPU while posting: chatto %.0f%%, nats-server %.0f%% of one core" % (u["chatto_cpu"], u["nats_cpu"]))
        print("  goals: every delivery made, p99 < 100 ms, chatto RSS <= 150 MB")
        if u["fan_err"].strip():
            print("  fanout stderr: " + u["fan_err"].strip().replace("\n", " | "))


if __name__ == "__main__":
    main()
