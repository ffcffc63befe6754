"""detect-secrets plugin that finds keyward API keys.

A keyward key is ``<prefix><env>_<43 random base62><6-digit base62 CRC32>``:
``<prefix>`` is the installation's (``KEYWARD_KEY_PREFIX``, default ``sk_``;
lower-case letters, digits and underscores, 2 to 16 characters, ending with
``_``), ``<env>`` is ``live``, ``test`` or ``dev``, and the checksum is the
CRC32 of everything before it, written as 6 base62 digits
(``0-9A-Za-z``). A match is reported only when its checksum is right, so
look-alikes, truncated keys and placeholders are not.

Use::

    detect-secrets scan --plugin scanners/detect_secrets_keyward.py .

To report only your installation's prefix (say ``acme_``), set
``KEYWARD_KEY_PREFIXES=acme_`` (several: comma-separated) in the scanner's
environment; by default any well-formed prefix is accepted (the checksum
still decides).
"""
import os
import re
import zlib
from typing import Generator

from detect_secrets.plugins.base import RegexBasedDetector

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
KEY = re.compile(
    r"(?<![A-Za-z0-9_])"
    r"([a-z][a-z0-9_]{0,14}_(?:live|test|dev)_[0-9A-Za-z]{49})"
    r"(?![A-Za-z0-9_])"
)
ENVIRONMENTS = ("live", "test", "dev")


def checksum(body: str) -> str:
    """The 6 base62 digits of the CRC32 of ``body``."""
    n = zlib.crc32(body.encode("ascii")) & 0xFFFFFFFF
    digits = []
    for _ in range(6):
        digits.append(BASE62[n % 62])
        n //= 62
    return "".join(reversed(digits))


def prefix_of(key: str) -> str:
    """The installation prefix of a key matched by ``KEY``."""
    head = key.rsplit("_", 1)[0]
    return head.rsplit("_", 1)[0] + "_"


def is_keyward_key(key: str) -> bool:
    """Whether ``key`` is a whole keyward key with a right checksum."""
    if not KEY.fullmatch(key):
        return False
    prefix = prefix_of(key)
    if not 2 <= len(prefix) <= 16:
        return False
    if key[len(prefix):].split("_", 1)[0] not in ENVIRONMENTS:
        return False
    wanted = [p.strip() for p in os.environ.get("KEYWARD_KEY_PREFIXES", "").split(",") if p.strip()]
    if wanted and prefix not in wanted:
        return False
    return checksum(key[:-6]) == key[-6:]


class KeywardKeyDetector(RegexBasedDetector):
    """Scans for keyward API keys, checking each one's checksum."""

    secret_type = "keyward API key"
    denylist = (KEY,)

    def analyze_string(self, string: str) -> Generator[str, None, None]:
        for match in KEY.findall(string):
            if is_keyward_key(match):
                yield match
