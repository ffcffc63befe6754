#!/usr/bin/env python3
"""An SMTP server for keyward's mail tests (aiosmtpd, pinned by .ci/run).

    smtp_sink.py      # prints "PORTS <smtp port>:<http port>" once listening

The SMTP port accepts every message; GET /messages on the HTTP port lists
what arrived: from, to, subject, the plain-text and HTML parts.
"""

import email
import email.policy
import json
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

LOCK = threading.Lock()
MESSAGES = []


class Sink:
    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        with LOCK:
            MESSAGES.append(
                {
                    "from": envelope.mail_from,
                    "to": envelope.rcpt_tos,
                    "subject": str(msg["subject"]),
                    "text": text.get_content() if text else None,
                    "html": html.get_content() if html else None,
                }
            )
        return "250 OK"


class Http(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        with LOCK:
            data = json.dumps(MESSAGES).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    port = free_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    http = ThreadingHTTPServer(("127.0.0.1", 0), Http)
    print(f"PORTS {port}:{http.server_address[1]}", flush=True)
    try:
        http.serve_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    sys.exit(main())
