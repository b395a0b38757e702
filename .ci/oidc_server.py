"""A test OIDC issuer for .ci/workflow_steps.py --oidc on: it plays GitHub Actions' and Azure
Pipelines' OIDC request endpoints on loopback and publishes its keys, as the real issuers do.

- `GET /github/token?sub=SUBJECT&audience=AUD` with `Authorization: Bearer GITHUB_TOKEN`
  answers `{"value": JWT}` (the runner puts the job's subject in ACTIONS_ID_TOKEN_REQUEST_URL);
  issuer `{base}/github`.
- `POST /ado/oidctoken?api-version=7.1&serviceConnectionId=ID` with
  `Authorization: Bearer ADO_TOKEN` answers `{"oidcToken": JWT}`, subject
  `sc://contoso/lab/lab-connection`, audience `api://AzureADTokenExchange`; issuer `{base}/ado`.
- `{issuer}/.well-known/openid-configuration` names `{issuer}/keys`, the JWKS.

Tokens are RS256 with a key made at start, valid for five minutes. Needs PyJWT and
cryptography (in the CI venv).
"""

import base64
import http.server
import json
import threading
import time
import urllib.parse
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

AUDIENCE = "api://AzureADTokenExchange"
ADO_SUBJECT = "sc://contoso/lab/lab-connection"


def b64(n):
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Issuer:
    def __init__(self, github_token, ado_token):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "ci-" + uuid.uuid4().hex[:8]
        self.github_token = github_token
        self.ado_token = ado_token
        self.requests = {"github": 0, "ado": 0}
        self.lock = threading.Lock()
        self.srv = None

    @property
    def base(self):
        return f"http://127.0.0.1:{self.srv.server_port}"

    def sign(self, iss, sub, aud):
        now = int(time.time())
        claims = {"iss": iss, "sub": sub, "aud": aud, "iat": now, "nbf": now, "exp": now + 300,
                  "jti": uuid.uuid4().hex}
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})

    def jwks(self):
        pub = self.key.public_key().public_numbers()
        return {"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": b64(pub.n), "e": b64(pub.e)}]}

    def start(self):
        issuer = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def reply(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def route(self, method):
                u = urllib.parse.urlparse(self.path)
                q = dict(urllib.parse.parse_qsl(u.query))
                auth = self.headers.get("Authorization", "")
                for name in ("github", "ado"):
                    iss = f"{issuer.base}/{name}"
                    if u.path == f"/{name}/.well-known/openid-configuration":
                        return self.reply(200, {"issuer": iss, "jwks_uri": f"{iss}/keys",
                                                "id_token_signing_alg_values_supported": ["RS256"]})
                    if u.path == f"/{name}/keys":
                        return self.reply(200, issuer.jwks())
                if method == "GET" and u.path == "/github/token":
                    if auth.lower() != "bearer " + issuer.github_token.lower():
                        return self.reply(401, {"message": "bad request token"})
                    with issuer.lock:
                        issuer.requests["github"] += 1
                    return self.reply(200, {"value": issuer.sign(f"{issuer.base}/github", q.get("sub", ""), q.get("audience", ""))})
                if method == "POST" and u.path == "/ado/oidctoken":
                    if auth != "Bearer " + issuer.ado_token or not q.get("serviceConnectionId"):
                        return self.reply(401, {"message": "bad access token or no service connection"})
                    n = int(self.headers.get("Content-Length") or 0)
                    self.rfile.read(n)
                    with issuer.lock:
                        issuer.requests["ado"] += 1
                    return self.reply(200, {"oidcToken": issuer.sign(f"{issuer.base}/ado", ADO_SUBJECT, AUDIENCE)})
                return self.reply(404, {"message": "not found"})

            def do_GET(self):
                self.route("GET")

            def do_POST(self):
                self.route("POST")

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        return self
