#!/usr/bin/env python3
"""A stand-in for kube-apiserver's TLS front door, for kubectl tests (not an apiserver).

Serves HTTPS with the given serving cert and key and demands a client certificate that chains to
the given client CA file (kube-apiserver's --client-ca-file: CERT_REQUIRED here, so a request
without a valid client cert fails the handshake). Answers GET /healthz ("ok") and GET /version.
Writes the port it listens on (127.0.0.1, chosen by the kernel) to PORT_FILE, then serves until
killed.

usage: mtls_apiserver_stand_in.py CERT KEY CLIENT_CA PORT_FILE
"""
import http.server
import json
import os
import ssl
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/healthz"):
            body, ctype = b"ok", "text/plain"
        elif self.path.startswith("/version"):
            body = json.dumps({"major": "1", "minor": "32", "gitVersion": "v1.32.0-stand-in"}).encode()
            ctype = "application/json"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    cert, key, client_ca, port_file = sys.argv[1:5]
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(client_ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
