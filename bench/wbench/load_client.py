"""The completeness-under-load client: CLIENTS processes (forked, so each has its own pid),
started together, each making PER_CLIENT HTTPS requests on a new connection each. With
BLOCKED_HOST, every other request of a client goes there instead. Each process writes one JSON
line per request to OUT_DIR/<pid>.jsonl: {"pid", "host", "ok", "error"}.

    load_client.py HOST CAFILE CLIENTS PER_CLIENT OUT_DIR [BLOCKED_HOST]
"""

import json
import os
import socket
import ssl
import sys


def request(ctx, host):
    with socket.create_connection((host, 443), timeout=60) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as s:
            s.sendall(f"GET /1k HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200") or len(body) != 1024:
        raise ValueError(f"bad response: {head[:40]!r}, {len(body)} body bytes")


def child(ctx, hosts, per_client, out_dir, go):
    os.read(go, 1)  # every client starts at once
    lines = []
    for i in range(per_client):
        host = hosts[i % len(hosts)]
        try:
            request(ctx, host)
            lines.append({"pid": os.getpid(), "host": host, "ok": True})
        except Exception as e:  # noqa: BLE001 - every failure is a result here
            lines.append({"pid": os.getpid(), "host": host, "ok": False,
                          "error": type(e).__name__})
    with open(os.path.join(out_dir, f"{os.getpid()}.jsonl"), "w") as f:
        f.writelines(json.dumps(l) + "\n" for l in lines)


def main():
    host, cafile, clients, per_client, out_dir = sys.argv[1:6]
    hosts = [host] + sys.argv[6:7]
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.set_alpn_protocols(["http/1.1"])
    go_r, go_w = os.pipe()
    pids = []
    for _ in range(int(clients)):
        pid = os.fork()
        if pid == 0:
            os.close(go_w)
            code = 0
            try:
                child(ctx, hosts, int(per_client), out_dir, go_r)
            except BaseException:  # noqa: BLE001
                code = 1
            os._exit(code)
        pids.append(pid)
    os.close(go_w)  # EOF releases every child at once
    failed = sum(os.waitpid(p, 0)[1] != 0 for p in pids)
    print(f"done {len(pids)} clients, {failed} crashed", flush=True)


if __name__ == "__main__":
    main()
