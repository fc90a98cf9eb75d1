"""A twisted.names authoritative DNS server on 127.0.0.1 serving test records."""

from __future__ import annotations

from typing import Any

from twisted.internet.error import CannotListenError
from twisted.names import authority, dns, server


class MemoryAuthority(authority.FileAuthority):
    """An authority for one zone whose records are given as a dict (name -> records)."""

    def __init__(self, zone: str, records: dict[str, list[Any]]) -> None:
        self._zone = zone
        self._given = records
        super().__init__(zone)

    def loadFile(self, filename: Any) -> None:  # noqa: N802  Twisted's name
        soa = dns.Record_SOA(
            mname=f"ns.{self._zone}", rname=f"root.{self._zone}", serial=1, minimum=60, expire=60
        )
        records: dict[bytes, list[Any]] = {
            name.lower().encode(): list(rrs) for name, rrs in self._given.items()
        }
        records.setdefault(self._zone.encode(), []).append(soa)
        self.soa = (self._zone.encode(), soa)  # type: ignore[assignment]  # Twisted types it None
        self.records = records  # type: ignore[assignment]  # Twisted types it None


def serve(reactor: Any, zone: str, records: dict[str, list[Any]]) -> tuple[Any, Any, int]:
    """Listen on UDP and TCP 127.0.0.1 (same port); returns (udp, tcp, port)."""
    factory = server.DNSServerFactory(authorities=[MemoryAuthority(zone, records)])
    # The kernel picks a free UDP port; the same TCP port may be taken, so retry.
    for _attempt in range(50):
        udp = reactor.listenUDP(0, dns.DNSDatagramProtocol(factory), interface="127.0.0.1")
        port = udp.getHost().port
        try:
            tcp = reactor.listenTCP(port, factory, interface="127.0.0.1")
        except CannotListenError:
            udp.stopListening()
            continue
        return udp, tcp, port
    raise RuntimeError("no port free for both UDP and TCP")


def mx(preference: int, name: str | bytes) -> Any:
    return dns.Record_MX(preference, name)


def a(address: str) -> Any:
    return dns.Record_A(address)
