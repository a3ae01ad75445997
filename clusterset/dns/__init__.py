"""The `clusterset.local` DNS server (Multi-Cluster Services DNS, mcs.md §9-§10) for one member cluster."""

from clusterset.dns.server import DnsServer, parse_address

__all__ = ["DnsServer", "parse_address"]
