#!/usr/bin/env python3
"""kube-apiserver stand-in for kbundle's tests (NOT Kubernetes; python3 standard library only).

Takes the flags the generated kube-apiserver unit passes and ignores all but these:
  --secure-port=N  --tls-cert-file=F  --tls-private-key-file=F  --client-ca-file=F  [--bind-address=IP]
Serves HTTPS:
  GET /healthz /livez /readyz   anonymously, "ok"
  PATCH <object path>           server-side apply only: a client certificate issued by
                                --client-ca-file (else 401), Content-Type
                                application/apply-patch+yaml (else 415), ?fieldManager= (else 400),
                                a JSON body (JSON is YAML) whose apiVersion, kind, metadata.name and
                                metadata.namespace match the path (else 400). 201 with the object
                                when it is new, 200 when it existed; the object comes back with
                                metadata.uid, resourceVersion, creationTimestamp and managedFields.
  Secrets (the re-encrypt step of an encryption-key rotation), with a client certificate:
  GET /api/v1/secrets?limit=N[&continue=T]   a SecretList page in namespace/name order; items carry
                                metadata.namespace, name, resourceVersion (no kind/apiVersion, as
                                the real list); metadata.continue when more follow
  GET /api/v1/namespaces/NS/secrets/NAME     the Secret (kind, apiVersion) or 404
  PUT /api/v1/namespaces/NS/secrets/NAME     Content-Type application/json (else 415), a v1 Secret
                                whose name and namespace match (else 400), metadata.resourceVersion
                                equal to the stored one (else 409 Conflict, as the API answers a
                                stale write), 404 when absent; stored with a new resourceVersion
  The Secrets come from $KB_STANDIN_SECRETS (a JSON list of {"namespace","name","data"}) at start.
  anything else                 a Status object (404 NotFound, 405 MethodNotAllowed).
Errors are Status objects ({"kind":"Status","apiVersion":"v1","status":"Failure","message",
"reason","code"}), as the real API answers.

Every request appends one JSON line to $KB_STANDIN_RECORD (default
/run/kbundle-standin/kube-apiserver/requests.jsonl):
  {"method","path","query","content_type","field_manager","force","client_cn","client_o":[...],
   "status","time","body"}   (body: the parsed JSON object of a PATCH, else null)

Fault injection (tests): $KB_STANDIN_FAULTS names a JSON file
  {"rules": [{"path_regex": "...", "answers": [409, 500, "timeout", "close"]}]}
read at every request (a changed file starts its counts again). The first rule whose regex
matches the path (re.search) and has answers left gives the next one, consumed in order:
  a number   that status as a Status object (429 and 503 carry Retry-After: 1)
  "timeout"  read the request, answer nothing, hold the connection until the client gives up (60 s at most)
  "close"    read the request and close the connection without an answer
Objects live in memory: a restarted stand-in creates them again (201).
"""
import datetime
import hashlib
import http.server
import json
import os
import re
import socketserver
import ssl
import sys
import threading
import urllib.parse
import uuid

REASONS = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
    409: "Conflict", 415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests",
    500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout",
}
PATH_RE = re.compile(r"^/(api/(?P<core>v1)|apis/(?P<group>[a-z0-9.-]+)/(?P<version>v[a-z0-9]+))"
                     r"(/namespaces/(?P<ns>[a-z0-9.-]+))?/(?P<plural>[a-z0-9.-]+)/(?P<name>[A-Za-z0-9.:_-]+)$")


def parse_flags(argv):
    flags = {}
    for a in argv:
        if a.startswith("--") and "=" in a:
            k, v = a[2:].split("=", 1)
            flags[k] = v
    return flags


class State:
    def __init__(self, record_path, faults_path):
        self.lock = threading.Lock()
        self.objects = {}  # path -> stored object
        self.resource_version = 1000
        self.record_path = record_path
        self.faults_path = faults_path
        self.faults_digest = None
        self.fault_used = {}
        self.secrets = {}  # (namespace, name) -> stored Secret

    def next_fault(self, path):
        if not self.faults_path or not os.path.exists(self.faults_path):
            return None
        with self.lock:
            raw = open(self.faults_path, "rb").read()
            digest = hashlib.sha256(raw).hexdigest()
            if digest != self.faults_digest:
                self.faults_digest, self.fault_used = digest, {}
            try:
                rules = json.loads(raw).get("rules", [])
            except ValueError:
                print("kube-api-standin: %s: not JSON; no faults" % self.faults_path, file=sys.stderr)
                return None
            for i, rule in enumerate(rules):
                if not re.search(rule.get("path_regex", ""), path):
                    continue
                used = self.fault_used.get(i, 0)
                answers = rule.get("answers", [])
                if used < len(answers):
                    self.fault_used[i] = used + 1
                    return answers[used]
            return None

    def record(self, entry):
        with self.lock:
            os.makedirs(os.path.dirname(self.record_path) or ".", exist_ok=True)
            with open(self.record_path, "a") as f:
                f.write(json.dumps(entry, sort_keys=True) + "\n")


def status_object(code, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": REASONS.get(code, "Unknown"), "code": code}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kube-api-standin"

    def setup(self):
        # The TLS handshake runs here, on the request's own thread.
        self.request.settimeout(30)
        try:
            self.request = self.server.ssl_context.wrap_socket(self.request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            print("kube-api-standin: TLS handshake failed: %s" % e, file=sys.stderr)
            self.handshake_failed = True
            self.request = None
        else:
            self.handshake_failed = False
        if self.request is not None:
            super().setup()

    def handle(self):
        if not self.handshake_failed:
            super().handle()

    def finish(self):
        if not self.handshake_failed:
            try:
                super().finish()
            except OSError:
                pass

    def log_message(self, fmt, *args):
        sys.stderr.write("kube-api-standin: %s\n" % (fmt % args))

    def client_identity(self):
        cert = self.request.getpeercert() or {}
        cn, orgs = None, []
        for rdn in cert.get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    cn = value
                elif key == "organizationName":
                    orgs.append(value)
        return cn, orgs

    def answer(self, code, obj, extra_headers=()):
        body = (json.dumps(obj) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json" if isinstance(obj, dict) else "text/plain")
        for k, v in extra_headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def answer_text(self, code, text):
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def do_GET(self):
        self.serve("GET")

    def do_PATCH(self):
        self.serve("PATCH")

    def do_PUT(self):
        self.serve("PUT")

    def do_POST(self):
        self.serve("POST")

    def do_DELETE(self):
        self.serve("DELETE")

    def serve(self, method):
        state = self.server.state
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if 0 < length <= (8 << 20) else b""
        cn, orgs = self.client_identity()
        entry = {"method": method, "path": url.path, "query": url.query,
                 "content_type": self.headers.get("Content-Type"),
                 "field_manager": (query.get("fieldManager") or [None])[0],
                 "force": (query.get("force") or [None])[0],
                 "client_cn": cn, "client_o": orgs, "status": None,
                 "time": datetime.datetime.now(datetime.timezone.utc).isoformat(), "body": None}
        fault = state.next_fault(url.path)
        if fault == "timeout":
            entry["status"] = "timeout"
            state.record(entry)
            self.close_connection = True
            try:
                self.request.settimeout(60)
                self.request.recv(1)  # returns when the client closes
            except OSError:
                pass
            return
        if fault == "close":
            entry["status"] = "close"
            state.record(entry)
            self.close_connection = True
            return
        code, obj, headers = self.respond(method, url.path, query, raw, cn, orgs, entry, fault)
        entry["status"] = code
        state.record(entry)
        if isinstance(obj, str):
            self.answer_text(code, obj)
        else:
            self.answer(code, obj, headers)

    def respond(self, method, path, query, raw, cn, orgs, entry, fault):
        if isinstance(fault, int):
            retry = [("Retry-After", "1")] if fault in (429, 503) else []
            return fault, status_object(fault, "injected fault %d (kube-api-standin)" % fault), retry
        if method == "GET" and path in ("/healthz", "/livez", "/readyz"):
            return 200, "ok", []
        if cn is None:
            return 401, status_object(401, "Unauthorized"), []
        if path == "/api/v1/secrets" and method == "GET":
            return self.list_secrets(query)
        m = PATH_RE.match(path)
        if not m:
            return 404, status_object(404, "the server could not find the requested resource"), []
        if m.group("core") and m.group("plural") == "secrets" and m.group("ns") and method in ("GET", "PUT"):
            return self.secret(method, m.group("ns"), m.group("name"), raw, entry)
        if method != "PATCH":
            return 405, status_object(405, "the stand-in serves only server-side apply (PATCH)"), []
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype != "application/apply-patch+yaml":
            return 415, status_object(415, "the body of the request was in an unknown format - accepted media types "
                                           "include: application/apply-patch+yaml"), []
        manager = (query.get("fieldManager") or [""])[0]
        if not manager:
            return 400, status_object(400, "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: "
                                           "is required for apply patch"), []
        try:
            obj = json.loads(raw)
        except ValueError:
            return 400, status_object(400, "error decoding YAML: the stand-in reads JSON only"), []
        if not isinstance(obj, dict):
            return 400, status_object(400, "the body is not an object"), []
        entry["body"] = obj
        want_version = "v1" if m.group("core") else "%s/%s" % (m.group("group"), m.group("version"))
        meta = obj.get("metadata") or {}
        if obj.get("apiVersion") != want_version or not obj.get("kind"):
            return 400, status_object(400, "apiVersion %r / kind %r do not match %s" % (obj.get("apiVersion"), obj.get("kind"), path)), []
        if meta.get("name") != m.group("name"):
            return 400, status_object(400, "the name of the object (%s) does not match the name on the URL (%s)"
                                      % (meta.get("name"), m.group("name"))), []
        if (meta.get("namespace") or None) != m.group("ns"):
            return 400, status_object(400, "the namespace of the object (%s) does not match the namespace on the request (%s)"
                                      % (meta.get("namespace"), m.group("ns"))), []
        state = self.server.state
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        with state.lock:
            old = state.objects.get(path)
            state.resource_version += 1
            stored = json.loads(json.dumps(obj))
            smeta = stored.setdefault("metadata", {})
            smeta["uid"] = old["metadata"]["uid"] if old else str(uuid.uuid4())
            smeta["creationTimestamp"] = old["metadata"]["creationTimestamp"] if old else now
            smeta["resourceVersion"] = str(state.resource_version)
            smeta["managedFields"] = [{"manager": manager, "operation": "Apply", "apiVersion": want_version,
                                       "time": now, "fieldsType": "FieldsV1", "fieldsV1": {}}]
            state.objects[path] = stored
        return (200 if old else 201), stored, []


    def list_secrets(self, query):
        state = self.server.state
        limit = int((query.get("limit") or ["500"])[0])
        after = (query.get("continue") or [""])[0]
        with state.lock:
            keys = sorted(k for k in state.secrets if not after or "%s/%s" % k > after)
            page = keys[:limit]
            items = [json.loads(json.dumps(state.secrets[k])) for k in page]
        for it in items:
            it.pop("kind", None)
            it.pop("apiVersion", None)
        meta = {"resourceVersion": str(state.resource_version)}
        if len(keys) > limit:
            meta["continue"] = "%s/%s" % page[-1]
        return 200, {"kind": "SecretList", "apiVersion": "v1", "metadata": meta, "items": items}, []

    def secret(self, method, ns, name, raw, entry):
        state = self.server.state
        with state.lock:
            old = state.secrets.get((ns, name))
            if old is None:
                return 404, status_object(404, 'secrets "%s" not found' % name), []
            if method == "GET":
                return 200, json.loads(json.dumps(old)), []
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            if ctype != "application/json":
                return 415, status_object(415, "PUT takes application/json here"), []
            try:
                obj = json.loads(raw)
            except ValueError:
                return 400, status_object(400, "the body is not JSON"), []
            entry["body"] = obj
            meta = obj.get("metadata") or {} if isinstance(obj, dict) else {}
            if not isinstance(obj, dict) or obj.get("kind") != "Secret" or obj.get("apiVersion") != "v1" \
                    or meta.get("name") != name or meta.get("namespace") != ns:
                return 400, status_object(400, "not the v1 Secret %s/%s" % (ns, name)), []
            if meta.get("resourceVersion") != old["metadata"]["resourceVersion"]:
                return 409, status_object(409, 'Operation cannot be fulfilled on secrets "%s": the object has been '
                                               'modified; please apply your changes to the latest version and try again' % name), []
            state.resource_version += 1
            obj["metadata"]["resourceVersion"] = str(state.resource_version)
            state.secrets[(ns, name)] = obj
            return 200, obj, []


def load_secrets(state, path):
    for s in json.load(open(path)):
        state.resource_version += 1
        state.secrets[(s["namespace"], s["name"])] = {
            "kind": "Secret", "apiVersion": "v1", "type": "Opaque", "data": s.get("data", {}),
            "metadata": {"namespace": s["namespace"], "name": s["name"], "uid": str(uuid.uuid4()),
                         "resourceVersion": str(state.resource_version)}}


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main(argv):
    flags = parse_flags(argv)
    for need in ("tls-cert-file", "tls-private-key-file", "client-ca-file"):
        if need not in flags:
            print("kube-api-standin: --%s is required" % need, file=sys.stderr)
            return 1
    port = int(flags.get("secure-port", "6443"))
    bind = flags.get("bind-address", "0.0.0.0")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(flags["tls-cert-file"], flags["tls-private-key-file"])
    ctx.load_verify_locations(flags["client-ca-file"])
    ctx.verify_mode = ssl.CERT_OPTIONAL  # anonymous health checks; PATCH needs a verified client cert
    record = os.environ.get("KB_STANDIN_RECORD", "/run/kbundle-standin/kube-apiserver/requests.jsonl")
    server = Server((bind, port), Handler)
    server.ssl_context = ctx
    server.state = State(record, os.environ.get("KB_STANDIN_FAULTS"))
    if os.environ.get("KB_STANDIN_SECRETS"):
        load_secrets(server.state, os.environ["KB_STANDIN_SECRETS"])
    print("kube-api-standin: serving https://%s:%d (records in %s)" % (bind, port, record), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
