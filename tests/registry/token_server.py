#!/usr/bin/env python3
"""A bearer token server for the registry tests (Docker's token auth, as distribution 2.8 checks it).

    token_server.py --key KEY.pem --cert CERT.pem --issuer ISS --user USER --password PASS \
                    --log LOG --port-file FILE [--port 0]

Answers `GET /token?service=S&scope=repository:NAME:pull,push&scope=...`:
  - with Basic auth naming USER:PASS, every action asked for;
  - without Authorization, `pull` only (anonymous pull, no anonymous push);
  - with any other Authorization, 401.
The answer is `{"token": JWT, "access_token": JWT, "expires_in": 300, "issued_at": ...}`, the JWT
RS256 (signed by `openssl dgst -sha256 -sign KEY`), its header carrying the certificate as `x5c`,
which the registry checks against its `rootcertbundle`.

Each request is appended to LOG as one JSON line: path, query, whether it was authenticated,
the scopes asked for and the access granted. The port it listens on (127.0.0.1, PORT or a free
one) is written to FILE once it listens. Python 3 standard library and the openssl binary only.
"""

import argparse
import base64
import json
import os
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def cert_der_b64(cert_path: str) -> str:
    """The certificate as base64 DER (standard alphabet, padded: what x5c holds)."""
    with open(cert_path, "rb") as f:
        pem = f.read().decode("ascii")
    body = "".join(
        line for line in pem.splitlines() if line and not line.startswith("-----")
    )
    return base64.b64encode(base64.b64decode(body)).decode("ascii")


def parse_scope(scope: str):
    """`repository:NAME:pull,push` -> (type, name, [actions]); NAME may hold `/` (and `:` for
    a registry with a port in it, so the type is split at the first colon, the actions at the
    last)."""
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    if not kind or not name:
        return None
    return kind, name, [a for a in actions.split(",") if a]


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, args):
        super().__init__(address, Handler)
        self.args = args
        self.x5c = cert_der_b64(args.cert)
        self.log_lock = threading.Lock()

    def sign(self, claims: dict) -> str:
        header = {"alg": "RS256", "typ": "JWT", "x5c": [self.x5c]}
        signing_input = (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", self.args.key],
            input=signing_input.encode("ascii"),
            capture_output=True,
            check=True,
        ).stdout
        return signing_input + "." + b64url(signature)

    def log(self, record: dict):
        with self.log_lock, open(self.args.log, "a") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # the JSON log is enough
        pass

    def answer(self, status: int, body: dict, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def who(self):
        """(user or None, acceptable): None for anonymous, the user for good credentials."""
        auth = self.headers.get("Authorization")
        if auth is None:
            return None, True
        kind, _, value = auth.partition(" ")
        if kind.lower() != "basic":
            return None, False
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except Exception:
            return None, False
        args = self.server.args
        if user == args.user and password == args.password:
            return user, True
        return None, False

    def do_GET(self):
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        user, acceptable = self.who()
        scopes = query.get("scope", [])
        record = {
            "path": url.path,
            "query": url.query,
            "authenticated": user is not None,
            "authorization": self.headers.get("Authorization") is not None,
            "service": query.get("service", [None])[0],
            "scopes": scopes,
            "granted": [],
        }
        if url.path != "/token":
            record["status"] = 404
            self.server.log(record)
            return self.answer(404, {"error": "not found"})
        if not acceptable:
            record["status"] = 401
            self.server.log(record)
            return self.answer(
                401,
                {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]},
                [("WWW-Authenticate", 'Basic realm="token"')],
            )
        access = []
        for scope in scopes:
            for one in scope.split(" "):
                parsed = parse_scope(one)
                if parsed is None:
                    continue
                kind, name, actions = parsed
                if user is None:
                    actions = [a for a in actions if a == "pull"]
                access.append({"type": kind, "name": name, "actions": actions})
        now = int(time.time())
        claims = {
            "iss": self.server.args.issuer,
            "sub": user or "",
            "aud": record["service"] or "",
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        token = self.server.sign(claims)
        record["granted"] = access
        record["status"] = 200
        self.server.log(record)
        issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        self.answer(
            200,
            {"token": token, "access_token": token, "expires_in": 300, "issued_at": issued},
        )


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--key", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--issuer", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file", required=True)
    args = p.parse_args()
    server = Server(("127.0.0.1", args.port), args)
    port = server.server_address[1]
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.rename(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
