"""Services whose server speaks first (banners) and just enough SMTP to take a message."""

from __future__ import annotations

# --------------------------------------------------------------------------- SMTP (server speaks first)

BANNERS = {
    21: b"220 (vsFTPd 3.0.3)\r\n",
    22: b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n",
    25: b"220 mail ESMTP Postfix (Debian/GNU)\r\n",
    110: b"+OK Dovecot (Debian) ready.\r\n",
    143: b"* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE IDLE AUTH=PLAIN] "
    b"Dovecot ready.\r\n",
    465: b"",
    587: b"220 mail ESMTP Postfix (Debian/GNU)\r\n",
    2525: b"220 mail ESMTP Postfix (Debian/GNU)\r\n",
}
SMTP_PORTS = frozenset({25, 587, 2525})
IMPLICIT_TLS = {465: 25, 993: 143, 995: 110}  # what speaks inside TLS on these ports


class SmtpStream:
    """Just enough of an SMTP server for a client to deliver its message."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.in_data = False
        self.commands: list[str] = []

    def feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        self.buf += data
        while True:
            if self.in_data:
                end = self.buf.find(b"\r\n.\r\n")
                if end < 0:
                    if len(self.buf) > 8:
                        del self.buf[:-8]  # the kept capture has the bytes; keep only a tail to find the end
                    return out
                del self.buf[: end + 5]
                self.in_data = False
                out.append(b"250 2.0.0 Ok: queued\r\n")
                continue
            end = self.buf.find(b"\n")
            if end < 0:
                if len(self.buf) > 4096:
                    self.buf.clear()
                return out
            line = bytes(self.buf[:end]).strip()
            del self.buf[: end + 1]
            verb = line.split(b" ", 1)[0].upper()
            if len(self.commands) < 64:
                self.commands.append(line[:200].decode("latin-1"))
            if verb in (b"EHLO", b"HELO"):
                out.append(
                    b"250-mail\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-AUTH PLAIN LOGIN\r\n"
                    b"250 8BITMIME\r\n"
                    if verb == b"EHLO"
                    else b"250 mail\r\n"
                )
            elif verb == b"DATA":
                self.in_data = True
                out.append(b"354 End data with <CR><LF>.<CR><LF>\r\n")
            elif verb == b"AUTH":
                out.append(b"235 2.7.0 Authentication successful\r\n")
            elif verb == b"QUIT":
                out.append(b"221 2.0.0 Bye\r\n")
            else:
                out.append(b"250 2.0.0 Ok\r\n")
