#!/usr/bin/env python3
"""Migration throughput: seed N secret versions, rotate the data key, re-encrypt them all with
`keys migrate` while reads go on, and report rows/s, peak RSS and read p99 (idle vs during the
migration). Appends a table to bench/results/history.md.

    bench/migration.py [N] [BATCH] [postgres://url]     (default N = 100000, BATCH = 500, SQLite)

Needs a release build (`cargo build --release -p keyward-cli`) and Python 3's standard library only.
"""
import atexit, http.client, json, os, shutil, subprocess, sys, tempfile, threading, time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
BATCH = int(sys.argv[2]) if len(sys.argv) > 2 else 500
DB_URL = sys.argv[3] if len(sys.argv) > 3 else None
BIN = os.path.join(os.path.dirname(__file__), "..", "target", "release", "keyward")
PORT = 18311


def call(conn, method, path, token, body=None):
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for attempt in (1, 2):
        sent = False
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            sent = True
            r = conn.getresponse()
            data = r.read()
            return r.status, (json.loads(data) if data else None)
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # The server closed a kept-alive connection (hyper closes one idle for 30 s): send the
            # request again on a new one — unless it went out and may have been acted on (a POST).
            conn.close()
            if attempt == 2 or (sent and method != "GET"):
                raise


def main():
    tmp = tempfile.mkdtemp(prefix="kw-bench-")
    db = DB_URL or os.path.join(tmp, "bench.db")
    env = dict(os.environ, KEYWARD_MASTER_KEY="AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=")
    server = subprocess.Popen(
        [BIN, "server", "--listen", f"127.0.0.1:{PORT}", "--database", db, "--rate-limit", "off",
         "--ip-rate-limit", "off", "--log-format", "json", "--migrate-batch", str(BATCH)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    def clean_up():
        # However the run ends, the server stops and its database (670 MB at 1,000,000) goes.
        if server.poll() is None:
            server.terminate()
            server.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    atexit.register(clean_up)
    server.stdout.readline()
    conn = http.client.HTTPConnection("127.0.0.1", PORT)
    conn.request("PUT", "/v1/sys/init", body="{}")
    token = json.loads(conn.getresponse().read())["root_token"]
    call(conn, "POST", "/api/v1/mounts", token, {"path": "bench"})

    # Seed: N versions (N/5 paths x 5 versions), 16 writers.
    paths = max(1, N // 5)
    t0 = time.time()
    def writer(k):
        c = http.client.HTTPConnection("127.0.0.1", PORT)
        for i in range(k, N, 16):
            s, _ = call(c, "PATCH", f"/api/v1/mounts/bench/secrets/p{i % paths}", token, {"set": {"K": f"v{i}"}})
            assert s == 200, s
    ts = [threading.Thread(target=writer, args=(k,)) for k in range(16)]
    [t.start() for t in ts]; [t.join() for t in ts]
    seed_rate = N / (time.time() - t0)
    # The server closes a connection left idle for 30 s (hyper's header-read timeout), as this one
    # was while a large seed ran: open a fresh one.
    conn.close()
    conn = http.client.HTTPConnection("127.0.0.1", PORT)

    def read_latencies(seconds, out):
        c = http.client.HTTPConnection("127.0.0.1", PORT)
        end = time.time() + seconds
        i = 0
        while time.time() < end:
            t = time.perf_counter()
            s, _ = call(c, "GET", f"/api/v1/mounts/bench/secrets/p{i % paths}", token)
            out.append(time.perf_counter() - t)
            i += 1

    def p99(xs):
        xs = sorted(xs)
        return xs[int(len(xs) * 0.99)] * 1000 if xs else float("nan")

    idle = []
    read_latencies(5, idle)
    call(conn, "POST", "/api/v1/mounts/bench/keys/rotate", token)
    s, job = call(conn, "POST", "/api/v1/keys/migrate", token, {"mount": "bench"})
    t0 = time.time()
    during, stop = [], False
    def reader():
        c = http.client.HTTPConnection("127.0.0.1", PORT)
        i = 0
        while not stop:
            t = time.perf_counter()
            call(c, "GET", f"/api/v1/mounts/bench/secrets/p{i % paths}", token)
            during.append(time.perf_counter() - t)
            i += 1
    rt = threading.Thread(target=reader); rt.start()
    peak = 0
    while True:
        s, j = call(conn, "GET", f"/api/v1/keys/jobs/{job['id']}", token)
        with open(f"/proc/{server.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) // 1024)
        if j["status"] != "running":
            break
        time.sleep(0.2)
    elapsed = time.time() - t0
    stop = True; rt.join()
    server.terminate(); server.wait()
    engine = "PostgreSQL" if DB_URL else "SQLite"
    table = f"""
### Migration — {time.strftime('%Y-%m-%d', time.gmtime())}, {os.cpu_count()} cores

Command: `bench/migration.py {N} {BATCH}{' <postgres url>' if DB_URL else ''}` ({engine}, release build, batch {BATCH}, one reader during the migration)

| versions | job | rows/s | peak RSS | read p99 idle | read p99 during | seed writes/s |
|---|---|---|---|---|---|---|
| {N} | {j['status']} {j['done']}/{j['total']} | {j['done'] / elapsed:,.0f} | {peak} MB | {p99(idle):.2f} ms | {p99(during):.2f} ms | {seed_rate:,.0f} |
"""
    print(table)
    with open(os.path.join(os.path.dirname(__file__), "results", "history.md"), "a") as f:
        f.write(table)


if __name__ == "__main__":
    main()
