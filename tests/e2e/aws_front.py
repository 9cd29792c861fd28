#!/usr/bin/env python3
"""The e2e tests' HTTPS front for moto_server (test stand-in, NOT AWS).

moto_server speaks plain HTTP on the host's loopback; nodes reach AWS over HTTPS. This front
listens with TLS (a certificate from the test's own CA, which the nodes and kbundle trust) and
forwards every request to moto unchanged: method, path, query, every header including Host (so
the SigV4 signatures kbundle computed for that host verify in moto) and the body.

One thing moto_server cannot do: S3 query-string authentication (presigned URLs). With signature
checking on it fails on a request without an Authorization header (HTTP 500), and with checking
off it serves any URL, tampered or expired. So for a request whose query holds X-Amz-Signature
this front does what S3 does (the SigV4 query-string rules: canonical request with
UNSIGNED-PAYLOAD, the credential scope, X-Amz-Expires of at most 604800 s) with the test's only
credentials, answering S3's errors itself (403 SignatureDoesNotMatch, 403 AccessDenied "Request
has expired", 403 InvalidAccessKeyId; and 403 AccessDenied for an anonymous request). A valid one
is forwarded to moto as the same GET or HEAD signed in the Authorization header with the same
credentials, so moto's IAM check and its answer (200, 404 NoSuchKey, ...) are moto's.

usage: aws_front.py LISTEN_IP:PORT CERT KEY UPSTREAM_HOST:PORT LOG
       (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY; region from the URL's scope)
Prints "ready" on stdout once listening."""
import datetime
import hashlib
import hmac
import http.client
import http.server
import os
import ssl
import sys
import threading
import urllib.parse

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

LISTEN, CERT, KEY, UPSTREAM, LOG = sys.argv[1:6]
ACCESS_KEY = os.environ["AWS_ACCESS_KEY_ID"]
SECRET_KEY = os.environ["AWS_SECRET_ACCESS_KEY"]
MAX_EXPIRES = 604800  # S3: a presigned URL lives one week at most
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "te", "trailer"}
log_lock = threading.Lock()


def log(line):
    with log_lock, open(LOG, "a") as f:
        f.write(line + "\n")


def s3_error(code, message, status):
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code><Message>%s</Message>'
            "<RequestId>kb-e2e-front</RequestId></Error>" % (code, message)).encode()
    return status, [("Content-Type", "application/xml")], body


def _hmac(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def check_presigned(method, raw_path, query, headers):
    """None if the presigned request is valid now, else the S3 error answer."""
    params = urllib.parse.parse_qsl(query, keep_blank_values=True)
    q = dict(params)
    try:
        algorithm, credential = q["X-Amz-Algorithm"], q["X-Amz-Credential"]
        amz_date, expires = q["X-Amz-Date"], int(q["X-Amz-Expires"])
        signed_headers, signature = q["X-Amz-SignedHeaders"].split(";"), q["X-Amz-Signature"]
        access_key, day, region, service, terminator = credential.split("/")
        when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    except (KeyError, ValueError):
        return s3_error("AuthorizationQueryParametersError",
                        "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
                        "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.", 400)
    if algorithm != "AWS4-HMAC-SHA256" or terminator != "aws4_request" or service != "s3" or not day == amz_date[:8]:
        return s3_error("AuthorizationQueryParametersError", "Error parsing the X-Amz-Credential parameter", 400)
    if not 0 < expires <= MAX_EXPIRES:
        return s3_error("AuthorizationQueryParametersError",
                        "X-Amz-Expires must be less than a week (in seconds) that is 604800", 400)
    if access_key != ACCESS_KEY:
        return s3_error("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.", 403)
    now = datetime.datetime.now(datetime.timezone.utc)
    if now > when + datetime.timedelta(seconds=expires):
        return s3_error("AccessDenied", "Request has expired", 403)
    if now < when - datetime.timedelta(minutes=15):
        return s3_error("AccessDenied", "Request is not valid yet", 403)
    enc = lambda s: urllib.parse.quote(s, safe="-_.~")
    canonical_query = "&".join("%s=%s" % (enc(k), enc(v)) for k, v in sorted(params) if k != "X-Amz-Signature")
    lower = {k.lower(): v for k, v in headers.items()}
    canonical_headers = "".join("%s:%s\n" % (h, " ".join(lower.get(h, "").split())) for h in signed_headers)
    canonical = "\n".join([method, raw_path, canonical_query, canonical_headers, ";".join(signed_headers),
                           "UNSIGNED-PAYLOAD"])
    scope = "/".join([day, region, service, terminator])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    k = _hmac(("AWS4" + SECRET_KEY).encode(), day)
    for part in (region, service, terminator):
        k = _hmac(k, part)
    want = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, signature):
        return s3_error("SignatureDoesNotMatch", "The request signature we calculated does not match the signature "
                        "you provided. Check your key and signing method.", 403)
    return None


def upstream(method, target, headers, body):
    conn = http.client.HTTPConnection(UPSTREAM, timeout=60)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for k, v in headers:
            conn.putheader(k, v)
        conn.endheaders(body if body else None)
        r = conn.getresponse()
        data = r.read()
        return r.status, [(k, v) for k, v in r.getheaders() if k.lower() not in HOP_BY_HOP], data
    finally:
        conn.close()


class Front(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle_one(self):
        raw_path, _, query = self.path.partition("?")
        if self.headers.get("Transfer-Encoding"):
            return s3_error("NotImplemented", "kb-e2e front: chunked request bodies are not supported", 501), "-"
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if "X-Amz-Signature" not in urllib.parse.parse_qs(query):
            if "Authorization" not in self.headers and not raw_path.startswith("/moto-api/"):
                # Anonymous: S3 denies it on a private bucket (moto would fail with a 500).
                return s3_error("AccessDenied", "Access Denied", 403), "anonymous refused"
            return upstream(self.command, self.path, self.headers.items(), body), "forwarded"
        bad = check_presigned(self.command, raw_path, query, self.headers)
        if bad:
            return bad, "presigned refused"
        if self.command not in ("GET", "HEAD"):
            return s3_error("AccessDenied", "kb-e2e front: presigned requests are GET or HEAD", 403), "presigned refused"
        region = dict(urllib.parse.parse_qsl(query))["X-Amz-Credential"].split("/")[2]
        req = AWSRequest(method=self.command, url="http://%s%s" % (UPSTREAM, raw_path))
        S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", region).add_auth(req)
        return upstream(self.command, raw_path, [("Host", UPSTREAM)] + list(req.headers.items()), b""), "presigned ok"

    def answer(self):
        try:
            (status, headers, body), how = self.handle_one()
        except Exception as e:  # moto down or a bug here: say so, as a 502
            (status, headers, body), how = s3_error("InternalError", "kb-e2e front: %s" % e, 502), "error"
        log("%s %s %s -> %d" % (self.command, self.path.partition("?")[0], how, status))
        self.send_response(status)
        for k, v in headers:
            if k.lower() != "content-length":
                self.send_header(k, v)
        length = [v for k, v in headers if k.lower() == "content-length"]
        self.send_header("Content-Length", length[0] if self.command == "HEAD" and length else str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = answer


def main():
    host, port = LISTEN.rsplit(":", 1)
    server = http.server.ThreadingHTTPServer((host, int(port)), Front)
    server.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(CERT, KEY)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
