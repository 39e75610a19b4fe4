"""Remove secrets from captured text before anything is written.

Each rule replaces the secret with ``<redacted>`` and reports where it was:
the line numbers and a count, never the value. The rules cover PEM private
keys, kubeconfig credentials (``token``, ``client-key-data``, ``password``,
``id-token``, ``refresh-token``, ``access-token``), ``Authorization: Bearer``
tokens, and passwords in BIRD, FRR and ``key=value`` or JSON configs.

:func:`is_secret_path` names files that are read as never: private key files
such as etcd's TLS client key, whose whole content is the secret.
"""

from __future__ import annotations

import logging
import posixpath
import re
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

REDACTED = "<redacted>"

_PEM_KEY = re.compile(
    r"-----BEGIN (?P<kind>[A-Z0-9 ]*PRIVATE KEY)-----.*?(?:-----END (?P=kind)-----|\Z)", re.DOTALL
)
# YAML or JSON keys whose value is a credential: kubeconfig users, auth providers, CNI and daemon configs.
_SECRET_KEYS = (
    r"token|client-key-data|password|passwd|secret|id-token|refresh-token|access-token|"
    r"etcd[_-]?key|private[_-]?key|bearer[_-]?token|auth[_-]?token|api[_-]?key"
)
_YAML_OR_JSON = re.compile(
    rf"""(?P<head>(?:^|[\s{{,])["']?(?P<key>[\w.-]*(?:{_SECRET_KEYS}))["']?\s*[:=]\s*)(?P<value>"[^"\n]*"|'[^'\n]*'|[^\s,}}#]+)""",
    re.IGNORECASE | re.MULTILINE,
)
_BEARER = re.compile(r"(?P<head>\bBearer\s+)(?P<value>[A-Za-z0-9._~+/=-]+)", re.IGNORECASE)
# BIRD: password "secret"; FRR: neighbor X password SECRET, password SECRET, enable password SECRET.
_CONFIG_PASSWORD = re.compile(
    r"(?P<head>\b(?:password|secret)\s+(?:\d\s+)?)(?P<value>\"[^\"\n]*\"|\S+)", re.IGNORECASE
)
# Flags that point at a key file, such as flanneld's -etcd-keyfile=/etc/kubernetes/pki/etcd/client.key.
_KEY_FILE_FLAG = re.compile(r"(?:-{1,2}[\w-]*key-?file[= ]|\"?[\w-]*key_file\"?\s*:\s*\")(?P<path>/[^\s\"',]+)", re.IGNORECASE)

#: File names that hold private keys whole: never read.
_SECRET_NAME = re.compile(r"(^|[._-])(key|private|privkey)([._-]|$)|\.key$|-key(\.pem)?$|^id_(rsa|ecdsa|ed25519)$", re.IGNORECASE)

#: Keys whose value names a file or a non-secret setting, not a credential.
_NOT_SECRETS = re.compile(r"(file|path|dir|_ref|-ref)$|^token-?ttl$|^tokenfile$", re.IGNORECASE)


@dataclass
class Redaction:
    """What one rule removed from one member: a count and line numbers, never the values."""

    member: str
    rule: str
    count: int = 0
    lines: list[int] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        """Return the manifest entry."""
        return {"member": self.member, "rule": self.rule, "count": self.count, "lines": self.lines}


def is_secret_path(path: str) -> bool:
    """Tell whether a file's name marks it as a private key or other whole-file secret."""
    return bool(_SECRET_NAME.search(posixpath.basename(path)))


def key_file_paths(text: str) -> list[str]:
    """Return the key files a config or options file points at (``-etcd-keyfile=...``, ``"etcd_key_file": "..."``)."""
    return [match.group("path") for match in _KEY_FILE_FLAG.finditer(text)]


def holds_only_private_key(text: str) -> bool:
    """Tell whether a file is a PEM private key and nothing else of use (a key file read by mistake)."""
    stripped = _PEM_KEY.sub("", text).strip()
    return stripped != text.strip() and not stripped


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def redact_text(member: str, text: str) -> tuple[str, list[Redaction]]:
    """Return ``text`` with every secret replaced, and what was removed by which rule."""
    found: dict[str, Redaction] = {}

    def note(rule: str, offset: int, source: str) -> None:
        entry = found.setdefault(rule, Redaction(member, rule))
        entry.count += 1
        line = _line_of(source, offset)
        if line not in entry.lines:
            entry.lines.append(line)

    def pem(match: re.Match[str]) -> str:
        note("pem-private-key", match.start(), current)
        return f"-----{REDACTED} {match.group('kind')}-----"

    current = text
    current = _PEM_KEY.sub(pem, current)

    def keyed(match: re.Match[str]) -> str:
        value = match.group("value").strip("\"'")
        if _NOT_SECRETS.search(match.group("key")) or not value or value == REDACTED or value in ("null", "~", "[]", "{}"):
            return match.group(0)
        note("credential-field", match.start("value"), current)
        quote = match.group("value")[0] if match.group("value")[0] in "\"'" else ""
        return f"{match.group('head')}{quote}{REDACTED}{quote}"

    current = _YAML_OR_JSON.sub(keyed, current)

    def bearer(match: re.Match[str]) -> str:
        if match.group("value") == REDACTED:
            return match.group(0)
        note("bearer-token", match.start("value"), current)
        return f"{match.group('head')}{REDACTED}"

    current = _BEARER.sub(bearer, current)

    def password(match: re.Match[str]) -> str:
        value = match.group("value")
        if REDACTED in value:
            return match.group(0)
        note("config-password", match.start("value"), current)
        replacement = f'"{REDACTED}"' if value.startswith('"') else REDACTED
        return f"{match.group('head')}{replacement}"

    current = _CONFIG_PASSWORD.sub(password, current)
    return current, sorted(found.values(), key=lambda entry: entry.rule)
