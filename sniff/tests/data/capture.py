#!/usr/bin/env python3
"""Re-captures the real ClientHello files in this folder.

Each client below is pointed at a listener on 127.0.0.1 that records the
bytes the client sends until a whole ClientHello has arrived, then hangs up,
so the client's handshake fails (which is expected and ignored). Nothing here
connects to any address other than loopback.

Usage (from anywhere): python3 sniff/tests/data/capture.py [NAME...]
"""

import os
import socket
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))

# A long ALPN list makes the hello a few KiB; with -max_send_frag 512 OpenSSL
# then really splits the handshake message over several TLS records.
LONG_ALPN = ",".join(["h2", "http/1.1"] + [f"x-warden-test-protocol-{i:03}-padding" for i in range(60)])

JAVA_CLIENT = """
import javax.net.ssl.*;
import java.util.List;
public class Hello {
    public static void main(String[] a) throws Exception {
        SSLSocket s = (SSLSocket) SSLSocketFactory.getDefault().createSocket("127.0.0.1", Integer.parseInt(a[0]));
        SSLParameters p = s.getSSLParameters();
        p.setServerNames(List.of(new SNIHostName("java.example")));
        p.setApplicationProtocols(new String[] {"h2", "http/1.1"});
        s.setSSLParameters(p);
        try { s.startHandshake(); } catch (Exception e) { }
    }
}
"""

PYTHON_CLIENT = """
import socket, ssl, sys
ctx = ssl.create_default_context()
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
try:
    ctx.wrap_socket(s, server_hostname="py.example")
except Exception:
    pass
"""

# name -> (client command, with {port} and {tmp} placeholders)
CLIENTS = {
    "curl-openssl.bin": "curl -s --max-time 5 https://Example.Test:{port}/ --resolve Example.Test:{port}:127.0.0.1",
    "openssl-s_client.bin": "openssl s_client -connect 127.0.0.1:{port} -servername a.example -alpn h2,http/1.1 </dev/null",
    "openssl-tls12-nosni.bin": "openssl s_client -connect 127.0.0.1:{port} -tls1_2 -noservername </dev/null",
    "openssl-split-records.bin": "openssl s_client -connect 127.0.0.1:{port} -servername split.example -max_send_frag 512 -alpn "
    + LONG_ALPN
    + " </dev/null",
    "python-ssl.bin": "python3 {tmp}/client.py {port}",
    "wget-gnutls.bin": "wget -q -O /dev/null --tries=1 --timeout=5 --inet4-only https://localhost:{port}/",
    "java-jsse.bin": "java {tmp}/Hello.java {port}",
    "node-tls.bin": "node -e \"require('tls').connect({{host:'127.0.0.1',port:{port},servername:'node.example',"
    "ALPNProtocols:['http/1.1']}}).on('error',()=>{{}})\"",
}


def hello_complete(data: bytes) -> bool:
    """True once the records in `data` carry a whole handshake message."""
    hs = b""
    i = 0
    while i + 5 <= len(data):
        n = int.from_bytes(data[i + 3 : i + 5], "big")
        hs += data[i + 5 : i + 5 + n]
        i += 5 + n
        if len(hs) >= 4 and len(hs) >= 4 + int.from_bytes(hs[1:4], "big"):
            return i <= len(data)
    return False


def capture(name: str, command: str, tmp: str) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(20)
    port = listener.getsockname()[1]
    proc = subprocess.Popen(
        command.format(port=port, tmp=tmp), shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    conn, _ = listener.accept()
    conn.settimeout(5)
    data = b""
    while not hello_complete(data):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    conn.close()
    listener.close()
    proc.wait(timeout=30)
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)
    print(f"{name}: {len(data)} bytes")


def main() -> None:
    names = sys.argv[1:] or list(CLIENTS)
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "Hello.java"), "w") as f:
            f.write(JAVA_CLIENT)
        with open(os.path.join(tmp, "client.py"), "w") as f:
            f.write(PYTHON_CLIENT)
        for name in names:
            capture(name, CLIENTS[name], tmp)


if __name__ == "__main__":
    main()
