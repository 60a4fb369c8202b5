"""Allow only the requested ports in, with an nftables ruleset loaded at boot."""

from __future__ import annotations

import msgspec

from workers.build.context import StageContext
from workers.build.stages.tree_files import write

NAME = "firewall"


class Port(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    start: int
    end: int
    protocol: str


class Options(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    ports: tuple[Port, ...]


def check(options: Options) -> None:
    for port in options.ports:
        if (
            port.protocol not in ("tcp", "udp")
            or not 1 <= port.start <= port.end <= 65535
        ):
            raise ValueError(
                f"{port.start}-{port.end}/{port.protocol} is not a port range"
            )


def ruleset(options: Options) -> str:
    allowed = "".join(
        f"\t\t{p.protocol} dport {p.start if p.start == p.end else f'{p.start}-{p.end}'} accept\n"
        for p in options.ports
    )
    # Replies, loopback, ICMP (IPv6 needs it for neighbour discovery) and DHCP
    # replies (sent to the broadcast address, so conntrack does not match them)
    # must pass, or the machine loses its network.
    return (
        "#!/usr/sbin/nft -f\n"
        "flush ruleset\n\n"
        "table inet filter {\n"
        "\tchain input {\n"
        "\t\ttype filter hook input priority filter; policy drop;\n"
        "\t\tct state established,related accept\n"
        "\t\tct state invalid drop\n"
        "\t\tiif lo accept\n"
        "\t\tmeta l4proto { icmp, ipv6-icmp } accept\n"
        "\t\tudp dport 68 accept\n"
        f"{allowed}"
        "\t}\n"
        "\tchain forward {\n\t\ttype filter hook forward priority filter; policy drop;\n\t}\n"
        "\tchain output {\n\t\ttype filter hook output priority filter; policy accept;\n\t}\n"
        "}\n"
    )


async def run(ctx: StageContext, options: Options) -> None:
    if not ctx.path("/usr/sbin/nft").exists():
        raise ValueError("the nftables package is needed for firewall ports")
    write(ctx.path("/etc/nftables.conf"), ruleset(options), 0o755)
    await ctx.run(
        ["systemctl", f"--root={ctx.tree}", "enable", "nftables.service"], timeout=120
    )
