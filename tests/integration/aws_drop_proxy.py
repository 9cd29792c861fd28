#!/usr/bin/env python3
"""An HTTP proxy for the aws_* tests: forwards every AWS Query API request to TARGET_URL (moto) and
passes the answer back, except for the next request whose Action is the one armed: that request is
forwarded (so the call is carried out) and its answer dropped (the connection is closed with nothing
sent), as when a response is lost on the way. Listens on 127.0.0.1 only and prints its port first.
Control, on the proxy itself:  POST /__arm?action=CreateVpc  arms one drop;
                               GET  /__dropped               how many answers were dropped so far.
usage: aws_drop_proxy.py TARGET_URL"""
import http.client
import http.server
import sys
import threading
import urllib.parse

target = urllib.parse.urlsplit(sys.argv[1])
lock = threading.Lock()
state = {"armed": "", "dropped": 0}
HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body=b""):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/__dropped":
            with lock:
                return self.reply(200, str(state["dropped"]).encode())
        self.forward(b"")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.startswith("/__arm"):
            action = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).get("action", [""])[0]
            with lock:
                state["armed"] = action
            return self.reply(200)
        self.forward(body)

    def forward(self, body):
        action = urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0]
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        headers["Content-Length"] = str(len(body))
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        with lock:
            drop = action != "" and action == state["armed"]
            if drop:
                state["armed"] = ""
                state["dropped"] += 1
        if drop:
            # Carried out by moto; the answer never arrives.
            self.close_connection = True
            return
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in HOP:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
