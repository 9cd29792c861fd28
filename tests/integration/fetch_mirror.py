#!/usr/bin/env python3
"""Builds a mirror of the upstream download layout for the fetch tests (never downloads).

usage: fetch_mirror.py CATALOG.json MIRROR_DIR VERSION...

CATALOG.json is a catalog template (binaries/catalog/v<minor>.json); the mirror gets the files of
every VERSION given (patch releases of that minor: "{version}" in the URLs is replaced).

Every artifact the catalog names is made from real Debian binaries where Debian has them
(etcd, etcdctl, containerd, containerd-shim-runc-v2, ctr, runc, CNI plugins, kubectl) and from
clearly named stand-ins otherwise (kube-apiserver & co: a shell script echoing
"kbundle test stand-in for COMPONENT VERSION", so each release's files differ), archived like upstream, with checksum files in each project's style.
Images are small OCI archives built by hand from busybox-static.
"""
import gzip, hashlib, io, json, os, shutil, sys, tarfile

template = open(sys.argv[1]).read()
mirror = sys.argv[2]
versions = sys.argv[3:]
if not versions:
    sys.exit("fetch_mirror.py: name at least one Kubernetes version (e.g. v1.32.3)")

REAL = {
    "etcd": "/usr/bin/etcd", "etcdctl": "/usr/bin/etcdctl",
    "containerd": "/usr/bin/containerd", "containerd-shim-runc-v2": "/usr/bin/containerd-shim-runc-v2",
    "ctr": "/usr/bin/ctr",
    "runc": "/usr/sbin/runc", "kubectl": shutil.which("kubectl") or "",
    "cni-bridge": "/usr/lib/cni/bridge", "cni-host-local": "/usr/lib/cni/host-local", "cni-loopback": "/usr/lib/cni/loopback",
}

def content_of(component, version):
    path = REAL.get(component, "")
    if path and os.path.isfile(path):
        return open(path, "rb").read()
    return f"#!/bin/sh\necho 'kbundle test stand-in for {component} {version}'\n".encode()

def local(url):  # https://HOST/PATH -> MIRROR/HOST/PATH
    return os.path.join(mirror, url.split("://", 1)[1])

def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)

def tar_gz(members):  # [(name, bytes, mode)]
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=1, mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as t:
            for name, data, mode in members:
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), mode, 0
                if name.endswith("/"):  # a directory (a "bin/" regular file breaks `ctr images import`)
                    info.type = tarfile.DIRTYPE
                t.addfile(info, io.BytesIO(data))
    return buf.getvalue()

sha = lambda b: hashlib.sha256(b).hexdigest()
sums = {}  # checksum file path -> lines (shared files such as SHA256SUMS)
done = set()  # artifacts fixed per minor are written once
for version in versions:
    catalog = json.loads(template.replace("{version}", version))
    for art in catalog["artifacts"]:
        url, files = art["url"], art["files"]
        if url in done:
            continue
        done.add(url)
        # Stand-ins of files fixed per minor (crictl...) do not change with the patch release.
        stamp = version if version in url else catalog["kubernetesMinor"]
        asset = url.rsplit("/", 1)[1]
        if len(files) == 1 and files[0]["member"] is None:
            data = content_of(files[0]["component"], stamp)
        else:
            members = [("README.md", b"upstream readme\n", 0o644)]
            for f in files:
                d = os.path.dirname(f["member"])
                if d and d != "." and (d + "/", b"", 0o755) not in members:
                    members.append((d + "/", b"", 0o755))
                members.append((f["member"], content_of(f["component"], stamp), 0o755))
            data = tar_gz(members)
        write(local(url), data)
        cpath = local(art["checksumUrl"])
        if art["checksumUrl"] == url + ".sha256" and ("dl.k8s.io" in url or "cri-tools" in url):
            write(cpath, (sha(data) + "\n").encode())            # a bare hash
        else:
            lines = sums.setdefault(cpath, [sha(b"another platform") + "  " + asset.replace("amd64", "arm64")])
            lines.append(sha(data) + "  " + asset)
for cpath, lines in sums.items():
    write(cpath, ("\n".join(lines) + "\n").encode())

# One OCI image layout (busybox in one layer), tarred, served for every image ref.
busybox = open("/bin/busybox", "rb").read()
layer = tar_gz([("bin/", b"", 0o755), ("bin/busybox", busybox, 0o755)])
config = json.dumps({"architecture": "amd64", "os": "linux",
                     "config": {"Entrypoint": ["/bin/busybox"]},
                     "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha(gzip.decompress(layer))]}}).encode()
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + sha(config), "size": len(config)},
                       "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + sha(layer), "size": len(layer)}]}).encode()
for img in json.loads(template).get("images", []):
    repo, tag = img["ref"].rsplit(":", 1)
    index = json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": "sha256:" + sha(manifest), "size": len(manifest),
                        "annotations": {"org.opencontainers.image.ref.name": tag}}]}).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for name, data in [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index),
                           ("blobs/sha256/" + sha(config), config), ("blobs/sha256/" + sha(manifest), manifest),
                           ("blobs/sha256/" + sha(layer), layer)]:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            t.addfile(info, io.BytesIO(data))
    archive = buf.getvalue()
    path = os.path.join(mirror, "oci", repo, tag + ".tar")
    write(path, archive)
    write(path + ".sha256", f"{sha(archive)}  {tag}.tar\n".encode())
