"""Who is on the other end of a request: the peer, or the client a trusted reverse proxy names."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.requests import HTTPConnection

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_trusted_proxies(spec: Sequence[str]) -> tuple[IPNetwork, ...]:
    """Addresses or CIDR networks (``10.0.0.5``, ``10.0.0.0/8``, ``::1``) of trusted reverse proxies.

    Raises:
        ValueError: an entry is not an address or network; the message names it.
    """
    networks = []
    for entry in spec:
        entry = entry.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"MCGIP_TRUSTED_PROXIES: {entry!r} is not an IP address or network") from None
    return tuple(networks)


def _trusted(address: str, proxies: Sequence[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in proxies)


def client_address(connection: HTTPConnection, proxies: Sequence[IPNetwork]) -> str | None:
    """The client's address.

    ``X-Forwarded-For`` is believed only when the peer itself is a trusted proxy; the chain is read
    from the right (the entries a trusted proxy appended) and the first hop that is not a trusted
    proxy is the client. Anything to the left of it was written by the client and could be forged.
    """
    peer = connection.client.host if connection.client else None
    if peer is None or not proxies or not _trusted(peer, proxies):
        return peer
    hops = [h.strip() for h in ",".join(connection.headers.getlist("x-forwarded-for")).split(",")]
    for hop in reversed([h for h in hops if h]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a garbled chain: fall back to the proxy itself
        if not _trusted(hop, proxies):
            return hop
    return peer
