"""A webhook receiver that trusts only deliveries the stack signed (Standard Webhooks).

WEBHOOK_SECRET: the value of the stack's WebhookSigningSecretArn secret (`backdrop local`
writes its own to its ready file as webhook_secret); PORT: where to listen."""

import os
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks import Webhook, WebhookVerificationError  # pip install standardwebhooks

webhook = Webhook(os.environ["WEBHOOK_SECRET"])


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        try:
            # Checks the signature and rejects old timestamps; raises if not the stack's.
            payload = webhook.verify(body, dict(self.headers))
        except WebhookVerificationError:
            self.send_response(400)
            self.end_headers()
            return
        # Deduplicate on webhook-id: a retry sends the same id and the same bytes.
        print(self.headers["webhook-id"], payload["type"], payload["data"]["id"], flush=True)
        self.send_response(204)  # any 2xx is delivered; 410 asks for no more
        self.end_headers()


HTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8000"))), Receiver).serve_forever()
