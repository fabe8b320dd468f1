"""An SMTP sink on 127.0.0.1 (aiosmtpd in a background thread) that keeps every message it accepts.

    with SmtpSink() as smtp:           # smtp.port
        ...
        [mail] = smtp.wait_for(1)      # email.message.EmailMessage objects
        smtp.fail_with(451)            # answer DATA with a temporary error until fail_with(None)
"""

from __future__ import annotations

import email
import email.policy
import threading
import time
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from doubles.n8n import free_port


class _Handler:
    def __init__(self, sink: SmtpSink):
        self.sink = sink

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        if self.sink.failure is not None:
            return f"{self.sink.failure} Mailbox temporarily unavailable (test)"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.sink.lock:
            self.sink.messages.append(message)  # type: ignore[arg-type]
            self.sink.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


class SmtpSink:
    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.failure: int | None = None
        self.lock = threading.Lock()
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port, ready_timeout=10)

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail_with(self, code: int | None) -> None:
        self.failure = code

    def take(self) -> list[EmailMessage]:
        with self.lock:
            taken, self.messages[:] = list(self.messages), []
            self.envelopes.clear()
        return taken

    def wait_for(self, count: int, timeout: float = 20.0) -> list[EmailMessage]:
        """At least `count` messages, waiting up to `timeout` s; then takes them all."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    break
            time.sleep(0.05)
        return self.take()
