#!/usr/bin/python3
"""spec/support/jwt_verifier.py: an API on loopback that checks "Authorization: Bearer <jwt>"
with PyJWT (Debian python3-jwt), independent of pacer's signing code.

usage: jwt_verifier.py PORTFILE ALG KEYFILE   (KEYFILE: the public key, or the HS256 secret)
Answers 200 {"claims": {...}, "header": {...}} when the signature and exp verify, else
401 {"error": "..."}; writes its port to PORTFILE once it listens."""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt

portfile, alg, keyfile = sys.argv[1], sys.argv[2], sys.argv[3]
with open(keyfile, "rb") as f:
    key = f.read()


class Handler(BaseHTTPRequestHandler):
    def answer(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_ANY(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        auth = self.headers.get("Authorization") or ""
        if not auth.startswith("Bearer "):
            return self.answer(401, {"error": "no bearer token"})
        token = auth[len("Bearer "):]
        try:
            claims = jwt.decode(token, key, algorithms=[alg], options={"require": ["exp", "iat", "jti"]})
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            return self.answer(401, {"error": type(e).__name__ + ": " + str(e)})
        self.answer(200, {"claims": claims, "header": header})

    do_GET = do_POST = do_ANY

    def log_message(self, *args):
        pass


srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os  # noqa: E402

os.rename(portfile + ".tmp", portfile)
srv.serve_forever()
