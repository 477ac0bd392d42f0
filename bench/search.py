#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`make bench` (and `make bench-search`): message search at 300k messages.

One chatto with embedded NATS. 300,000 chat-like messages (bench/search_corpus.py: Zipf vocabulary, 3-30 words)
are appended straight to CHATTO_EVENTS as msg.posted events of one room (bench/evpub), while the search provider
indexes them live. Then: the index rebuilt from scratch (chatto stopped, the index directory deleted, chatto
started; time until GetStatus says READY) and its size; SearchMessages latency through the HTTP API (20 results,
keep-alive) for one-word, two-word and phrase queries; and post-to-searchable lag while 100 messages/s are posted
through the API (each message's unique word searched until found). CHATTO_BENCH_SEARCH_N changes the count.
"""
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "integration"))
sys.path.insert(0, HERE)
from harness import BUILD, Chatto, Client, FAST_AUTH, wait_for  # noqa: E402
from run import nats_creds  # noqa: E402
from search_corpus import messages  # noqa: E402

N = int(os.environ.get("CHATTO_BENCH_SEARCH_N", "300000"))
S = "/api/connect/chatto.api.v1.MessageSearchService/"


class Api:
    """One keep-alive connection with a bearer token."""

    def __init__(self, port, token):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.h = {"Content-Type": "application/json", "Authorization": "Bearer " + token}

    def call(self, path, body):
        self.conn.request("POST", path, json.dumps(body), self.h)
        r = self.conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError("%s -> %d %s" % (path, r.status, data[:300]))
        return json.loads(data)


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))] if v else float("nan")


def du(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def seed(c, room, uid, msgs):
    url, token = nats_creds(c)
    now = int(time.time() * 1000)
    p = subprocess.Popen([os.path.join(BUILD, "bench", "evpub"), url, token], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    for i, body in enumerate(msgs):
        mid = "bm%018d" % i
        at = now - (len(msgs) - i) * 1000
        ev = {"type": "msg.posted", "id": "be%018d" % i, "actor": uid, "at": at,
              "msg": {"id": mid, "author": uid, "body": body, "createdAt": at}}
        p.stdin.write("chatto.ev.%s.msg.%s\t%s\n" % (room, mid, json.dumps(ev, ensure_ascii=False)))
    p.stdin.close()
    out = p.stdout.read()
    if p.wait() != 0:
        raise SystemExit("evpub failed")
    return int(out)


def ready(api):
    return api.call(S + "GetStatus", {})["state"] == "MESSAGE_SEARCH_STATE_READY"


def latency(api, queries):
    lat, hits = [], 0
    for q in queries:
        t = time.perf_counter()
        r = api.call(S + "SearchMessages", {"query": q, "pageSize": 20})
        lat.append((time.perf_counter() - t) * 1000)
        hits += len(r["results"])
    return lat, hits


def lag_run(c, token, room, rate=100, seconds=20):
    """Post rate msg/s through the API (the clock starts at each post's acknowledgement); a poller asks for the
    newest 100 messages with the run's marker word, so one search sees many posts (an upper bound: a message
    counts as found when the search that first returned it had completed)."""
    poster, poller = Api(c.port, token), Api(c.port, token)
    pending, lags, done = {}, [], threading.Event()
    lock = threading.Lock()

    def post():
        t0 = time.monotonic()
        for i in range(rate * seconds):
            d = t0 + i / rate - time.monotonic()
            if d > 0:
                time.sleep(d)
            m = poster.call("/api/connect/chatto.api.v1.MessageService/CreateMessage",
                            {"roomId": room, "body": "lagmarker measuring lagword%06dq now" % i})["message"]
            with lock:
                pending[m["id"]] = time.monotonic()
        done.set()

    t = threading.Thread(target=post)
    t.start()
    deadline = None
    while True:
        with lock:
            if done.is_set() and not pending:
                break
        if done.is_set():
            deadline = deadline or time.monotonic() + 30
            if time.monotonic() > deadline:
                raise SystemExit("%d posts never became searchable" % len(pending))
        r = poller.call(S + "SearchMessages", {"query": "lagmarker", "pageSize": 100,
                                               "order": "MESSAGE_SEARCH_ORDER_NEWEST"})
        now = time.monotonic()
        with lock:
            for x in r["results"]:
                t_ack = pending.pop(x["eventId"], None)
                if t_ack is not None:
                    lags.append((now - t_ack) * 1000)
        time.sleep(0.005)
    t.join()
    return lags


def on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def main():
    signal.signal(signal.SIGTERM, on_sigterm)
    msgs, vocab = messages(N)
    rng = random.Random(5)

    def pick():
        # half from the head of the Zipf vocabulary (common words: the worst case for ranking), half anywhere
        return rng.choice(vocab[:50]) if rng.random() < .5 else rng.choice(vocab[:5000])
    one = [pick() for _ in range(300)]
    two = ["%s %s" % (pick(), pick()) for _ in range(300)]
    phrase = []
    for _ in range(300):
        w = msgs[rng.randrange(N)].split()
        i = rng.randrange(max(1, len(w) - 1))
        phrase.append('"%s"' % " ".join(w[i:i + 2]))

    c = Chatto(args=FAST_AUTH)
    c.start()
    try:
        user = Client(c)
        reg = user.register("bench", token=True).json()
        token, uid = reg["token"], reg["user"]["id"]
        room = user.ok("chatto.api.v1.RoomService/CreateRoom", {"name": "bench"})["room"]["id"]
        api = Api(c.port, token)
        t0 = time.monotonic()
        n = seed(c, room, uid, msgs)
        t_seed = time.monotonic() - t0
        last = "bm%018d" % (N - 1)
        # live: the provider indexes while the events arrive; done when the last message is searchable
        words = msgs[-1].split()
        q = '"%s"' % " ".join(words[:3])
        wait_for(lambda: any(r["eventId"] == last for r in
                             api.call(S + "SearchMessages", {"query": q, "pageSize": 100})["results"]),
                 600, "the last seeded message searchable", interval=0.2)
        t_live = time.monotonic() - t0
        index_dir = os.path.join(c.data_dir, "search")
        # rebuild from scratch, as a new replica would
        c.stop()
        shutil.rmtree(index_dir)
        c.start(wait_ready=False)
        t0 = time.monotonic()
        c.wait_ready(120)
        api = Api(c.port, token)
        wait_for(lambda: ready(api), 900, "search READY after the rebuild", interval=0.1)
        t_rebuild = time.monotonic() - t0
        time.sleep(1)
        size = du(index_dir)
        for qs in (one[:20], two[:20], phrase[:20]):  # warm the page cache as a running server would be
            latency(api, qs)
        l1, h1 = latency(api, one)
        l2, h2 = latency(api, two)
        l3, h3 = latency(api, phrase)
        lags = lag_run(c, token, room)
        if c.proc.poll() is not None:
            raise SystemExit("chatto exited during the run:\n" + c.stderr()[-4000:])
        print("\nChatto search benchmark: %d messages (%d appended in %.1f s), %d cores shared by chatto, "
              "nats-server and this script; load average %.2f" % (N, n, t_seed, os.cpu_count(), os.getloadavg()[0]))
        print("  indexed live while appended: last message searchable %.1f s after the first append" % t_live)
        print("  rebuild from an empty index directory (chatto restarted): %.1f s until READY; index size %.1f MB"
              % (t_rebuild, size / 1e6))
        fmt = "  %-36s p50 %7.2f ms   p99 %7.2f ms   (%d queries, %.1f results each)"
        print(fmt % ("SearchMessages one word", pct(l1, .5), pct(l1, .99), len(l1), h1 / len(l1)))
        print(fmt % ("SearchMessages two words", pct(l2, .5), pct(l2, .99), len(l2), h2 / len(l2)))
        print(fmt % ("SearchMessages phrase", pct(l3, .5), pct(l3, .99), len(l3), h3 / len(l3)))
        print("  post-to-searchable lag at 100 posts/s: p50 %.0f ms, p99 %.0f ms, max %.0f ms (%d messages)"
              % (pct(lags, .5), pct(lags, .99), max(lags), len(lags)))
        print("  goals: query p99 < 50 ms, lag p99 < 1000 ms")
    finally:
        c.cleanup()


if __name__ == "__main__":
    main()
