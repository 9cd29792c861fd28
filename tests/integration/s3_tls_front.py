#!/usr/bin/env python3
"""An HTTPS front for moto's S3 that checks presigned GET URLs as S3 does. moto serves plain http
and checks header signatures only (it ignores a query-string signature), so a node's fetch of a
presigned URL is checked here instead: the signature is recomputed with botocore (the AWS SDK's
signer) for the request's own host, path and query; a mismatch answers 403 SignatureDoesNotMatch,
a URL past X-Amz-Date + X-Amz-Expires 403 AccessDenied "Request has expired", as S3 answers. A
valid request is sent on to moto path-style, signed in headers with the same credentials, and
moto's answer (200, or 404 NoSuchKey for an object not published yet) goes back unchanged.
For tests only: kbundle's first-boot script (aws/user_data.cpp) fetches through it.

usage: s3_tls_front.py --listen HOST:PORT --upstream URL --cert PEM --key PEM --log FILE
                       [--skew-file FILE]     (seconds added to the clock, read on every request)
                       [--no-list-file FILE]  (while it exists, a missing key answers 403 AccessDenied,
                                               as S3 does when the signer may not s3:ListBucket)
credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (the ones `kbundle aws up` signed with)."""
import argparse
import datetime
import http.server
import os
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import botocore.auth
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ap = argparse.ArgumentParser()
ap.add_argument("--listen", required=True)
ap.add_argument("--upstream", required=True)
ap.add_argument("--cert", required=True)
ap.add_argument("--key", required=True)
ap.add_argument("--log", required=True)
ap.add_argument("--skew-file")
ap.add_argument("--no-list-file")
args = ap.parse_args()
ACCESS, SECRET = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
REAL_NOW = botocore.auth.get_current_datetime


def s3_error(code, message):
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'.encode()


def skew():
    try:
        with open(args.skew_file) as f:
            return int(f.read().strip() or 0)
    except (TypeError, OSError, ValueError):
        return 0


def check_presigned(host, path, query):
    """None when the presigned URL is valid now, else (status, code, message)."""
    q = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
    need = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature")
    if any(k not in q for k in need):
        return 403, "AccessDenied", "Access Denied"
    scope = q["X-Amz-Credential"].split("/")
    access, region = scope[0], scope[2] if len(scope) > 2 else ""
    if access != ACCESS:
        return 403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."
    when = datetime.datetime.strptime(q["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    botocore.auth.get_current_datetime = lambda remove_tzinfo=True: when
    try:
        signer = S3SigV4QueryAuth(Credentials(ACCESS, SECRET), "s3", region, expires=int(q["X-Amz-Expires"]))
        # Every other query parameter is part of what was signed, as S3 computes it: a parameter
        # added to a presigned URL (a response-content-disposition, a versionId) breaks its signature.
        extra = [(k, v) for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True) if k not in need]
        req = AWSRequest(method="GET", url=f"https://{host}{path}" + ("?" + urllib.parse.urlencode(extra) if extra else ""))
        signer.add_auth(req)
    finally:
        botocore.auth.get_current_datetime = REAL_NOW
    want = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(req.url).query))
    if want.get("X-Amz-Signature") != q["X-Amz-Signature"]:
        return 403, "SignatureDoesNotMatch", ("The request signature we calculated does not match the signature you "
                                              "provided. Check your key and signing method.")
    age = time.time() + skew() - when.replace(tzinfo=datetime.timezone.utc).timestamp()
    if age > int(q["X-Amz-Expires"]):
        return 403, "AccessDenied", "Request has expired"
    return None


class Front(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        pass

    def answer(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with open(args.log, "a") as f:  # the path only: the query is a credential
            f.write(f"GET {urllib.parse.urlsplit(self.path).path} {status}\n")

    def do_GET(self):
        parts = urllib.parse.urlsplit(self.path)
        bad = check_presigned(self.headers["Host"], parts.path, parts.query)
        if bad:
            return self.answer(bad[0], s3_error(bad[1], bad[2]), [("Content-Type", "application/xml")])
        up = AWSRequest(method="GET", url=args.upstream.rstrip("/") + parts.path)
        S3SigV4Auth(Credentials(ACCESS, SECRET), "s3", os.environ.get("AWS_REGION", "us-east-1")).add_auth(up)
        try:
            with urllib.request.urlopen(urllib.request.Request(up.url, headers=dict(up.headers.items()))) as r:
                status, body, ctype = r.status, r.read(), r.headers.get("Content-Type", "application/octet-stream")
        except urllib.error.HTTPError as e:
            status, body, ctype = e.code, e.read(), e.headers.get("Content-Type", "application/xml")
        if status == 404 and args.no_list_file and os.path.exists(args.no_list_file):
            status, body, ctype = 403, s3_error("AccessDenied", "Access Denied"), "application/xml"
        self.answer(status, body, [("Content-Type", ctype)])


host, port = args.listen.rsplit(":", 1)
server = http.server.HTTPServer((host, int(port)), Front)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.minimum_version = ssl.TLSVersion.TLSv1_2
ctx.load_cert_chain(args.cert, args.key)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
print("ready", flush=True)
server.serve_forever()
