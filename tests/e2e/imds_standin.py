#!/usr/bin/env python3
"""A per-node EC2 instance metadata service, IMDSv2 only (test stand-in, NOT AWS).

moto_server's metadata emulation names one instance, i-fake, for every caller, so it cannot tell
three nodes apart. This one runs inside one node's network namespace on 169.254.169.254:80 and
answers that node's own instance id, with the IMDSv2 rules the installer relies on:
  PUT /latest/api/token with X-aws-ec2-metadata-token-ttl-seconds (1..21600) -> a session token;
      a PUT carrying X-Forwarded-For is refused (403), as EC2 refuses proxied token requests;
  GET /latest/meta-data/instance-id with a valid X-aws-ec2-metadata-token -> the id; without or
      with a wrong token -> 401 (IMDSv1 is off: HttpTokens=required, as `kbundle aws up` sets);
  anything else -> 404.
Each request is appended to LOG as "METHOD PATH STATUS", so a test can see it was asked.

usage: imds_standin.py LISTEN_IP:PORT INSTANCE_ID LOG     (prints "ready" once listening)"""
import http.server
import secrets
import sys
import time

LISTEN, INSTANCE_ID, LOG = sys.argv[1:4]
tokens = {}  # token -> expiry (monotonic seconds)


class Imds(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=""):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        with open(LOG, "a") as f:
            f.write("%s %s %d\n" % (self.command, self.path, status))

    def do_PUT(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != "/latest/api/token":
            return self.reply(404)
        if self.headers.get("X-Forwarded-For"):
            return self.reply(403)
        try:
            ttl = int(self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", ""))
        except ValueError:
            return self.reply(400)
        if not 1 <= ttl <= 21600:
            return self.reply(400)
        token = secrets.token_urlsafe(32)
        tokens[token] = time.monotonic() + ttl
        self.reply(200, token)

    def do_GET(self):
        token = self.headers.get("X-aws-ec2-metadata-token", "")
        if tokens.get(token, 0) < time.monotonic():
            return self.reply(401)
        if self.path == "/latest/meta-data/instance-id":
            return self.reply(200, INSTANCE_ID)
        self.reply(404)


def main():
    host, port = LISTEN.rsplit(":", 1)
    server = http.server.ThreadingHTTPServer((host, int(port)), Imds)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
