"""Read flannel's keys from a live etcd, from the v2 and the v3 keyspace.

This is a cluster-level collector: it runs once per snapshot, not per node, so
it is not in ``COLLECTORS``. etcd keeps the v2 and v3 keyspaces apart, and
flanneld reads v2 (releases before 0.17) or v3, so both are read by default and
every key is recorded with the keyspace it came from
(``EtcdData.keyspace_entries``). ``EtcdData.keys`` merges them: a key present in
both keeps its v3 value.

The v3 keyspace is read with python-etcd3, imported only when needed. When it
cannot be imported (for example under protobuf 4 or newer), the JSON gateway
(``/v3/kv/range``) is used instead. The v2 keyspace is read with the HTTP API.
Nothing is written.
"""

from __future__ import annotations

import base64
import json
import logging
import ssl
import urllib.error
import urllib.parse
import urllib.request
import warnings
from dataclasses import dataclass
from typing import Any

from netdoctor.model import EtcdData, Gap

logger = logging.getLogger(__name__)

SOURCE = "etcd"
DEFAULT_PREFIX = "/coreos.com/network"
APIS = ("v2", "v3", "both")


@dataclass(frozen=True)
class Tls:
    """Client TLS files for etcd: the CA bundle, and a client certificate with its key."""

    ca_cert: str | None = None
    cert: str | None = None
    key: str | None = None

    def context(self) -> ssl.SSLContext:
        """Return an SSL context that trusts ``ca_cert`` and presents the client certificate."""
        context = ssl.create_default_context(cafile=self.ca_cert)
        if self.cert:
            context.load_cert_chain(self.cert, self.key)
        return context


class EndpointError(ValueError):
    """An endpoint is not a valid ``http(s)://host:port`` URL."""


def parse_endpoint(endpoint: str) -> tuple[str, str, int]:
    """Split an endpoint into (scheme, host, port); ``host:port`` alone means http."""
    text = endpoint.strip()
    if "://" not in text:
        text = "http://" + text
    parsed = urllib.parse.urlsplit(text)
    try:
        port = parsed.port
    except ValueError:
        port = None
    if parsed.scheme not in ("http", "https") or not parsed.hostname or port is None:
        raise EndpointError(
            f"invalid etcd endpoint {endpoint!r}: expected http://HOST:PORT or https://HOST:PORT, such as http://127.0.0.1:2379"
        )
    return parsed.scheme, parsed.hostname, port


def _base_url(scheme: str, host: str, port: int) -> str:
    host_text = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host_text}:{port}"


def _open(url: str, tls: Tls, timeout: float, body: bytes | None = None) -> Any:
    context = tls.context() if url.startswith("https:") else None
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
        return json.loads(response.read())


def read_v2(base: str, prefix: str, tls: Tls, timeout: float) -> list[tuple[str, str]]:
    """Return every (key, value) under ``prefix`` in the v2 keyspace; a missing prefix gives none."""
    url = f"{base}/v2/keys{urllib.parse.quote(prefix)}?recursive=true"
    try:
        document = _open(url, tls, timeout)
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            code = json.loads(raw).get("errorCode")
        except (ValueError, AttributeError):
            code = None
        if code == 100:  # Key not found
            return []
        if error.code == 404:
            raise ConnectionError("the v2 API is off (start etcd with --enable-v2 to serve it)") from None
        raise ConnectionError(f"HTTP {error.code} from {url}") from None
    pairs = []
    stack = [document.get("node") or {}]
    while stack:
        node = stack.pop()
        stack.extend(node.get("nodes") or [])
        if not node.get("dir") and "value" in node:
            pairs.append((str(node["key"]), str(node["value"])))
    return pairs


def _range_end(prefix: str) -> bytes:
    """Return the v3 range end that selects every key starting with ``prefix``."""
    raw = bytearray(prefix.encode())
    while raw and raw[-1] == 0xFF:
        raw.pop()
    if not raw:
        return b"\0"
    raw[-1] += 1
    return bytes(raw)


def read_v3_gateway(base: str, prefix: str, tls: Tls, timeout: float) -> list[tuple[str, str]]:
    """Return every (key, value) under ``prefix`` in the v3 keyspace through the JSON gateway."""
    body = json.dumps(
        {"key": base64.b64encode(prefix.encode()).decode(), "range_end": base64.b64encode(_range_end(prefix)).decode()}
    ).encode()
    try:
        document = _open(f"{base}/v3/kv/range", tls, timeout, body)
    except urllib.error.HTTPError as error:
        raise ConnectionError(f"HTTP {error.code} from the v3 gateway {base}/v3/kv/range") from None
    return [
        (base64.b64decode(item["key"]).decode("utf-8", "replace"), base64.b64decode(item.get("value", "")).decode("utf-8", "replace"))
        for item in document.get("kvs") or []
    ]


def read_v3(scheme: str, host: str, port: int, prefix: str, tls: Tls, timeout: float) -> tuple[list[tuple[str, str]], str]:
    """Return every (key, value) under ``prefix`` in the v3 keyspace and the client used."""
    try:
        with warnings.catch_warnings():
            # etcd3 0.12's generated protobuf modules use descriptor calls that protobuf 3.20 deprecates.
            warnings.simplefilter("ignore", DeprecationWarning)
            import etcd3  # imported here: grpc and protobuf take a while to load
    except (ImportError, TypeError) as error:  # protobuf 4 and newer raise TypeError at import
        logger.info("python-etcd3 cannot be imported (%s); reading v3 through the JSON gateway", error)
        return read_v3_gateway(_base_url(scheme, host, port), prefix, tls, timeout), "v3 gateway"
    options: dict[str, Any] = {"host": host, "port": port, "timeout": timeout}
    if scheme == "https":
        options.update({"ca_cert": tls.ca_cert, "cert_cert": tls.cert, "cert_key": tls.key})
    client = etcd3.client(**options)
    try:
        pairs = [
            (metadata.key.decode("utf-8", "replace"), value.decode("utf-8", "replace"))
            for value, metadata in client.get_prefix(prefix)
        ]
    except etcd3.exceptions.Etcd3Exception as error:
        raise ConnectionError(f"{type(error).__name__}: {error}") from None
    finally:
        client.close()
    return pairs, "v3"


def collect_etcd(
    endpoints: list[str],
    prefix: str = DEFAULT_PREFIX,
    api: str = "both",
    ca_cert: str | None = None,
    cert: str | None = None,
    key: str | None = None,
    timeout: float = 5.0,
) -> tuple[EtcdData | None, list[Gap]]:
    """Read the keys under ``prefix`` from the first endpoint that answers, per keyspace.

    ``api`` is ``v2``, ``v3`` or ``both``. Returns None and the gaps when no
    keyspace could be read; a keyspace that fails while the other works is a gap.
    """
    if api not in APIS:
        raise ValueError(f"invalid etcd API {api!r}: choose one of {', '.join(APIS)}")
    gaps: list[Gap] = []
    parsed: list[tuple[str, str, int]] = []
    for endpoint in endpoints:
        try:
            parsed.append(parse_endpoint(endpoint))
        except EndpointError as error:
            gaps.append(Gap(None, SOURCE, str(error)))
    if not parsed:
        if not endpoints:
            gaps.append(Gap(None, SOURCE, "no etcd endpoint given: pass one such as http://127.0.0.1:2379"))
        return None, gaps

    tls = Tls(ca_cert, cert, key)
    wanted = ("v2", "v3") if api == "both" else (api,)
    entries: list[tuple[str, str, str]] = []
    origins: list[str] = []
    for keyspace in wanted:
        failures = []
        for scheme, host, port in parsed:
            base = _base_url(scheme, host, port)
            try:
                if keyspace == "v2":
                    pairs, client = read_v2(base, prefix, tls, timeout), "v2"
                else:
                    pairs, client = read_v3(scheme, host, port, prefix, tls, timeout)
            except (ConnectionError, OSError, ValueError, ssl.SSLError) as error:
                failures.append(f"{base}: {error}")
                continue
            entries += [(keyspace, name, value) for name, value in pairs]
            origins.append(f"{base} ({client})")
            break
        else:
            reason = f"{keyspace} keyspace not read: " + "; ".join(failures)
            logger.warning("etcd: %s", reason)
            gaps.append(Gap(None, SOURCE, reason))

    if not origins:
        return None, gaps
    merged = {name: value for keyspace, name, value in sorted(entries) if keyspace == "v2"}
    merged.update({name: value for keyspace, name, value in entries if keyspace == "v3"})
    data = EtcdData(
        keys=tuple(sorted(merged.items())),
        origin=", ".join(origins),
        keyspace_entries=tuple(sorted(entries)),
    )
    return data, gaps
