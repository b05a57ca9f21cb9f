"""Russian words for numbers: the one place their grammar lives."""
from __future__ import annotations


def plural(n: int, one: str, few: str, many: str) -> str:
    """The Russian plural form for n: 1 счёт, 2 счёта, 5 счетов, 11 счетов, 21 счёт."""
    if n % 10 == 1 and n % 100 != 11:
        return one
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    return many
