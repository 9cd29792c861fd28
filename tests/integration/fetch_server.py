#!/usr/bin/env python3
"""A loopback HTTP server for the fetch tests: serves DIR with byte ranges, logs every request
("GET /path range=bytes=N-" per line) to LOG, and writes the port it chose to PORTFILE.

usage: fetch_server.py DIR LOG PORTFILE [DROP_SUFFIX]
With DROP_SUFFIX, the first full GET of a path ending in it announces the whole length, sends
half of the body and closes the connection (a dropped download).
"""
import http.server, os, sys, threading

root, log_path, port_file = sys.argv[1], sys.argv[2], sys.argv[3]
drop = sys.argv[4] if len(sys.argv) > 4 else None
dropped = set()
lock = threading.Lock()

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        rng = self.headers.get("Range")
        with lock, open(log_path, "a") as log:
            log.write(f"GET {self.path} range={rng or '-'}\n")
        path = os.path.join(root, self.path.lstrip("/").split("?")[0])
        if ".." in self.path or not os.path.isfile(path):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = open(path, "rb").read()
        start = 0
        if rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if drop and self.path.endswith(drop) and not rng and self.path not in dropped:
            dropped.add(self.path)
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(data[start:])

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
