#!/usr/bin/python3
"""spec/support/smtp_sink.py: a real SMTP server on loopback (Debian python3-aiosmtpd)
that writes each message it accepts to DIR/N.eml, with the envelope in DIR/N.env.

usage: smtp_sink.py DIR PORT [USER PASSWORD]   (with a user: AUTH PLAIN/LOGIN required,
       allowed without TLS on loopback). Writes DIR/ready once it listens."""
import os
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

outdir, port = sys.argv[1], int(sys.argv[2])
creds = (sys.argv[3].encode(), sys.argv[4].encode()) if len(sys.argv) > 4 else None
count = 0


class Sink:
    async def handle_DATA(self, server, session, envelope):
        global count
        count += 1
        with open(os.path.join(outdir, "%d.env" % count), "w") as f:
            f.write("from %s\n" % envelope.mail_from)
            for r in envelope.rcpt_tos:
                f.write("to %s\n" % r)
        with open(os.path.join(outdir, "%d.eml" % count), "wb") as f:
            f.write(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = creds is not None and (auth_data.login, auth_data.password) == creds
    return AuthResult(success=ok, handled=False)


kw = {}
if creds:
    kw = dict(authenticator=authenticator, auth_required=True, auth_require_tls=False)
ctl = Controller(Sink(), hostname="127.0.0.1", port=port, **kw)
ctl.start()
open(os.path.join(outdir, "ready"), "w").close()
try:
    while True:
        time.sleep(3600)
finally:
    ctl.stop()
