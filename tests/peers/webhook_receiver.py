#!/usr/bin/env python3
"""A webhook receiver for keyward's peer tests.

Verifies every delivery with the official Standard Webhooks library
(PyPI `standardwebhooks`, pinned by .ci/run), not with keyward's code.

    webhook_receiver.py            # prints "PORT <n>" once listening

POST /_config   {"secrets": ["whsec_…"], "fail_first": 1}
                  secrets to verify with (any one may match); answer 500 to
                  the first `fail_first` deliveries (counted from now)
GET  /_log      every delivery so far: id, timestamp, type, verified,
                  error, status answered, number of signatures
POST /<any>     a delivery
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

LOCK = threading.Lock()
STATE = {"secrets": [], "fail_left": 0, "log": []}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/_log":
            with LOCK:
                return self.answer(200, STATE["log"])
        self.answer(404, {})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if self.path == "/_config":
            config = json.loads(body)
            with LOCK:
                STATE["secrets"] = config.get("secrets", [])
                STATE["fail_left"] = config.get("fail_first", 0)
            return self.answer(200, {})
        headers = {k.lower(): v for k, v in self.headers.items()}
        verified, error, payload = False, None, None
        with LOCK:
            secrets = list(STATE["secrets"])
        for secret in secrets:
            try:
                payload = Webhook(secret).verify(body.decode(), headers)
                verified = True
                break
            except Exception as e:  # noqa: BLE001 - reported to the test
                error = f"{type(e).__name__}: {e}"
        with LOCK:
            if STATE["fail_left"] > 0:
                STATE["fail_left"] -= 1
                status = 500
            else:
                status = 200 if verified else 400
            STATE["log"].append(
                {
                    "id": headers.get("webhook-id"),
                    "timestamp": headers.get("webhook-timestamp"),
                    "signatures": len(headers.get("webhook-signature", "").split()),
                    "type": (payload or {}).get("type"),
                    "data": (payload or {}).get("data"),
                    "verified": verified,
                    "error": error,
                    "status": status,
                    "body": body.decode(errors="replace"),
                }
            )
        self.answer(status, {"ok": status == 200})


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
