"""HTTP client for the `goose serve` end-to-end tests: Python's urllib / http.client, one JSON
result on stdout per command.

  request METHOD URL [BODY]         one request; BODY is JSON text, or @FILE for raw bytes
  stream URL BODY                   a streamed request: every SSE event, parsed
  concurrent URL BODY...            one streamed request per BODY, all at once (threads)
  disconnect URL BODY N             reads N events of a streamed request, then drops the socket
"""
import http.client
import json
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request


def body_bytes(arg):
    if arg is None:
        return None
    if arg.startswith("@"):
        with open(arg[1:], "rb") as f:
            return f.read()
    return arg.encode("utf-8")


def request(method, url, body=None):
    req = urllib.request.Request(url, data=body_bytes(body), method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            status, ctype, data = r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        status, ctype, data = e.code, e.headers.get("Content-Type", ""), e.read()
    try:
        parsed = json.loads(data)
    except ValueError:
        parsed = data.decode("utf-8", "replace")
    return {"status": status, "content_type": ctype, "body": parsed}


def stream(url, body):
    """All events of one streamed request, plus when the first and last arrived."""
    t0 = time.time()
    req = urllib.request.Request(url, data=body.encode("utf-8"), method="POST",
                                 headers={"Content-Type": "application/json"})
    events, first = [], None
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            status, ctype = r.status, r.headers.get("Content-Type", "")
            for raw in r:
                line = raw.decode("utf-8").rstrip("\r\n")
                if not line:
                    continue
                if not line.startswith("data: "):
                    events.append({"bad_line": line})
                    continue
                data = line[len("data: "):]
                events.append(data if data == "[DONE]" else json.loads(data))
                if first is None:
                    first = time.time() - t0
    except urllib.error.HTTPError as e:
        return {"status": e.code, "body": json.loads(e.read()), "events": []}
    return {"status": status, "content_type": ctype, "events": events,
            "first_s": first, "total_s": time.time() - t0}


def concurrent(url, bodies):
    results = [None] * len(bodies)

    def run(i):
        try:
            results[i] = stream(url, bodies[i])
        except Exception as e:  # reported, not raised: the test asserts on it
            results[i] = {"status": -1, "exception": repr(e), "events": []}

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(bodies))]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"results": results, "wall_s": time.time() - t0}


def disconnect(url, body, n):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    conn.request("POST", u.path, body=body.encode("utf-8"),
                 headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    got = 0
    while got < n:
        line = r.fp.readline()
        if not line:
            break
        if line.startswith(b"data: "):
            got += 1
    conn.sock.shutdown(socket.SHUT_RDWR)  # gone mid-stream, without reading the rest
    conn.sock.close()
    return {"status": r.status, "events_read": got}


def main(argv):
    cmd = argv[1]
    if cmd == "request":
        out = request(argv[2], argv[3], argv[4] if len(argv) > 4 else None)
    elif cmd == "stream":
        out = stream(argv[2], argv[3])
    elif cmd == "concurrent":
        out = concurrent(argv[2], argv[3:])
    elif cmd == "disconnect":
        out = disconnect(argv[2], argv[3], int(argv[4]))
    else:
        raise SystemExit("unknown command " + cmd)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv)
