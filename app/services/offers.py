"""Plugins' offers by name: collecting what a hook's implementations offer (channels,
transports, mailers, payment gateways, act exporters) and picking the one configuration
names. One rule for every hook: a name offered twice, or a configured name nobody offers,
stops the portal at start-up with the reason, not at a user's first use."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def collect(offers: Iterable[Iterable[Any] | None], what: str, error: type[Exception],
            key: str = "name") -> dict[str, Any]:
    """Every offered object by its ``key`` (its name, or an exporter's format)."""
    found: dict[str, Any] = {}
    for objects in offers:
        for obj in objects or ():
            name = getattr(obj, key)
            if name in found:
                raise error(f"{what} {name!r} is registered twice (offered by "
                            f"{found[name]!r} and by {obj!r})")
            found[name] = obj
    return found


def pick(offered: dict[str, Any], name: str, what: str, setting: str,
         error: type[Exception]) -> Any:
    """The offered object that ``setting`` names."""
    if name not in offered:
        raise error(f"{what} {name!r} is configured ({setting}) but no plugin offers it "
                    f"(offered: {', '.join(sorted(offered)) or 'none'})")
    return offered[name]
