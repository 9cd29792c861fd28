#!/usr/bin/env python3
"""Checks a presigned S3 GET URL the way AWS would: botocore (the AWS SDK's signer) signs the same
request at the same instant and must produce the same X-Amz-Signature.
usage: publish_presign_check.py URL ACCESS_KEY SECRET_KEY REGION   (exit 0: identical)"""
import datetime
import sys
import urllib.parse

import botocore.auth
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

url, access_key, secret_key, region = sys.argv[1:5]
parts = urllib.parse.urlsplit(url)
query = dict(urllib.parse.parse_qsl(parts.query))
when = datetime.datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
botocore.auth.get_current_datetime = lambda remove_tzinfo=True: when
signer = S3SigV4QueryAuth(Credentials(access_key, secret_key), "s3", region, expires=int(query["X-Amz-Expires"]))
request = AWSRequest(method="GET", url=urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")))
signer.add_auth(request)
want = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(request.url).query))
for k in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"):
    if want.get(k) != query.get(k):
        print(f"presigned URL differs from botocore's in {k}: {query.get(k)} != {want.get(k)}", file=sys.stderr)
        sys.exit(1)
