#!/usr/bin/env python3
"""Re-captures the real DNS queries and answers in this folder.

dig (BIND's client) asks dnsmasq, serving a small zone from its command line, through a
recording relay: both listen on 127.0.0.1 only, dnsmasq has no upstream (--no-resolv, and
--local makes it answer warden.test itself), and dig is pointed at the relay with @127.0.0.1,
so nothing here sends a packet to any address other than loopback.

For each case the relay writes NAME.query.bin (what dig sent) and NAME.answer.bin (what
dnsmasq answered). Over TCP the files hold the stream as sent, two-byte length prefixes
included (RFC 1035 section 4.2.2).

Usage (from anywhere; needs dig and dnsmasq): python3 sniff/tests/data/dns/capture.py [NAME...]
"""

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def ech_config_list() -> bytes:
    """A well-formed ECHConfigList (draft-ietf-tls-esni, version 0xfe0d) with a fixed key."""

    def vec16(b: bytes) -> bytes:
        return len(b).to_bytes(2, "big") + b

    public_name = b"public.warden.test"
    contents = (
        bytes([7])  # config_id
        + (0x0020).to_bytes(2, "big")  # kem_id DHKEM(X25519, HKDF-SHA256)
        + vec16(bytes(range(32)))  # public_key
        + vec16((0x0001).to_bytes(2, "big") + (0x0001).to_bytes(2, "big"))  # HKDF-SHA256, AES-128-GCM
        + bytes([0])  # maximum_name_length
        + bytes([len(public_name)])
        + public_name
        + vec16(b"")  # extensions
    )
    config = (0xFE0D).to_bytes(2, "big") + vec16(contents)
    return vec16(config)


def svc_param(key: int, value: bytes) -> bytes:
    return key.to_bytes(2, "big") + len(value).to_bytes(2, "big") + value


def https_rdata() -> str:
    """HTTPS 1 . mandatory=alpn,ech alpn=h2,h3 ipv4hint=192.0.2.30 ech=... ipv6hint=2001:db8::30"""
    rdata = (
        (1).to_bytes(2, "big")
        + b"\x00"  # TargetName "."
        + svc_param(0, (1).to_bytes(2, "big") + (5).to_bytes(2, "big"))
        + svc_param(1, b"\x02h2\x02h3")
        + svc_param(4, bytes([192, 0, 2, 30]))
        + svc_param(5, ech_config_list())
        + svc_param(6, bytes.fromhex("20010db8000000000000000000000030"))
    )
    return rdata.hex()


DNSMASQ_ZONE = [
    "--local=/warden.test/",
    "--local-ttl=60",
    "--host-record=www.warden.test,192.0.2.10,2001:db8::10",
    "--host-record=e1.cdn.warden.test,192.0.2.21",
    "--cname=alias.warden.test,edge.cdn.warden.test",
    "--cname=edge.cdn.warden.test,e1.cdn.warden.test",
    "--txt-record=txt.warden.test,v=spf1 -all",
    "--dns-rr=crypto.warden.test,65," + https_rdata(),
]

# name -> dig arguments (after @127.0.0.1 -p PORT)
CASES = {
    "a-edns": "www.warden.test A",
    "aaaa-noedns": "+noedns WWW.Warden.Test AAAA",
    "cname-chain": "alias.warden.test A",
    "nxdomain": "missing.warden.test A",
    "https-ech": "crypto.warden.test HTTPS",
    "txt": "txt.warden.test TXT",
    "tcp-a": "+tcp www.warden.test A",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def relay_udp(listener: socket.socket, upstream: int) -> tuple[bytes, bytes]:
    query, client = listener.recvfrom(65535)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as up:
        up.settimeout(5)
        up.sendto(query, ("127.0.0.1", upstream))
        answer = up.recv(65535)
    listener.sendto(answer, client)
    return query, answer


def read_framed(conn: socket.socket) -> bytes:
    data = b""
    while len(data) < 2 or len(data) < 2 + int.from_bytes(data[:2], "big"):
        chunk = conn.recv(65535)
        if not chunk:
            raise RuntimeError("connection closed mid-message")
        data += chunk
    return data


def relay_tcp(listener: socket.socket, upstream: int) -> tuple[bytes, bytes]:
    conn, _ = listener.accept()
    with conn, socket.create_connection(("127.0.0.1", upstream), timeout=5) as up:
        conn.settimeout(5)
        query = read_framed(conn)
        up.sendall(query)
        answer = read_framed(up)
        conn.sendall(answer)
    return query, answer


def capture(name: str, args: str, upstream: int) -> None:
    tcp = "+tcp" in args
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    if tcp:
        listener.listen(1)
    listener.settimeout(10)
    port = listener.getsockname()[1]
    result = {}

    def run() -> None:
        result["pair"] = (relay_tcp if tcp else relay_udp)(listener, upstream)

    thread = threading.Thread(target=run)
    thread.start()
    dig = f"dig @127.0.0.1 -p {port} +tries=1 +time=5 +nosearch {args}"
    out = subprocess.run(dig.split(), capture_output=True, text=True, timeout=30)
    thread.join()
    listener.close()
    query, answer = result["pair"]
    for suffix, data in (("query", query), ("answer", answer)):
        with open(os.path.join(HERE, f"{name}.{suffix}.bin"), "wb") as f:
            f.write(data)
    status = [line for line in out.stdout.splitlines() if "status:" in line]
    print(f"{name}: query {len(query)} bytes, answer {len(answer)} bytes; {status[0].strip() if status else out.stdout}")


def main() -> None:
    names = sys.argv[1:] or list(CASES)
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        dnsmasq = subprocess.Popen(
            [
                "dnsmasq",
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                f"--pid-file={tmp}/dnsmasq.pid",
                "--user=root",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                f"--port={port}",
                "--log-facility=-",
            ]
            + DNSMASQ_ZONE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(0.5)
            for name in names:
                capture(name, CASES[name], port)
        finally:
            dnsmasq.terminate()
            dnsmasq.wait(timeout=10)


if __name__ == "__main__":
    main()
