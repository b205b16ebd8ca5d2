"""The market-making vault's arithmetic (SPEC §11), pure: shares at NAV, exposure caps, and the
quoting rule. The behaviour (deposits, redemptions, quotes on the book, takeovers) is
``core/engine/vault.py`` and ``core/engine/liquidation/insolvency.py``.

**Shares at NAV, and the donation (inflation) attack.** NAV is the equity of the ``VAULT``
subaccount. Shares are priced as OpenZeppelin's ERC-4626 prices them, with a *virtual* offset:
the vault behaves as if ``VIRTUAL_SHARES`` shares and ``VIRTUAL_QUOTE_QUANTUMS`` of quote always
existed on top of the real ones::

    minted   = ⌊amount × (total_shares + VIRTUAL_SHARES) / (NAV + VIRTUAL_QUOTE_QUANTUMS)⌋
    redeemed = ⌊shares × (NAV + VIRTUAL_QUOTE_QUANTUMS) / (total_shares + VIRTUAL_SHARES)⌋

Both round down: against the depositor, against the withdrawer, so the share price
(NAV + virtual quote) / (total + virtual shares) never falls from a deposit or a redemption.
The classic attack (deposit one quantum, then donate a large amount to the vault so that the
next depositor's shares round down to nothing) fails: one quantum buys 10⁶ shares, so a
donation D raises a share's worth to about D / 10⁶ quantums only, a victim loses at most one
share's worth to rounding, and the attacker gives away nearly all of D to the virtual shares.
No dead shares are minted at genesis: the virtual ones do their work without locking anyone's
quote.
"""

from __future__ import annotations

from dataclasses import dataclass

from clearhouse.core.ids import Side
from clearhouse.core.params import VaultParams
from clearhouse.core.units import PPM_ONE, div_ceil, div_floor

VIRTUAL_SHARES = 10**6  # a share is a millionth of a quote quantum at the first deposit
VIRTUAL_QUOTE_QUANTUMS = 1


def shares_for_deposit(amount_quantums: int, *, nav_quantums: int, total_shares: int) -> int:
    """Shares minted for ``amount_quantums`` of quote at NAV; rounded down (the depositor
    gets no fraction of a share it did not pay for)."""
    assert amount_quantums > 0, amount_quantums
    assert nav_quantums >= 0 and total_shares >= 0, (nav_quantums, total_shares)
    return div_floor(
        amount_quantums * (total_shares + VIRTUAL_SHARES), nav_quantums + VIRTUAL_QUOTE_QUANTUMS
    )


def quote_for_shares(shares: int, *, nav_quantums: int, total_shares: int) -> int:
    """Quote paid for redeeming ``shares`` at NAV; rounded down (the withdrawer takes no
    fraction of a quantum from those who stay). Nothing when NAV is not positive."""
    assert 0 < shares <= total_shares, (shares, total_shares)
    if nav_quantums <= 0:
        return 0
    return div_floor(
        shares * (nav_quantums + VIRTUAL_QUOTE_QUANTUMS), total_shares + VIRTUAL_SHARES
    )


def cap_base_quantums(
    *, cap_quote_quantums: int, nav_quantums: int, nav_share_cap_ppm: int, mark_price_quantums: int,
    base_quantums_per_unit: int, step_base_quantums: int,
) -> int:  # fmt: skip
    """The largest position (either side) the vault may hold in a market: the smaller of the
    market's cap and its share of NAV, at the mark; rounded down to the size step (the cap
    holds). Zero when NAV is not positive or there is no mark."""
    if nav_quantums <= 0 or mark_price_quantums <= 0:
        return 0
    quote = min(cap_quote_quantums, div_floor(nav_quantums * nav_share_cap_ppm, PPM_ONE))
    base = div_floor(quote * base_quantums_per_unit, mark_price_quantums)
    return base - base % step_base_quantums


def room_base_quantums(position_base_quantums: int, side: Side, cap: int) -> int:
    """How much the vault may still buy (or sell) before its position passes ``cap``: a trade
    that reduces its position first has the position's size more room."""
    return max(cap - position_base_quantums * side, 0)


@dataclass(frozen=True, slots=True)
class Quote:
    """A bid and an ask; a side with size 0 is not quoted."""

    bid_price_quantums: int
    bid_base_quantums: int
    ask_price_quantums: int
    ask_base_quantums: int


@dataclass(frozen=True, slots=True, kw_only=True)
class QuoteInputs:
    mark_price_quantums: int
    vol_annual_ppm: int  # the oracle's realized (EWMA) volatility, annualized
    position_base_quantums: int  # the vault's position, signed
    cap_base_quantums: int  # from ``cap_base_quantums``
    level_quote_quantums: int  # the size of each quote, at the mark
    tick_quantums: int
    step_base_quantums: int
    min_order_base_quantums: int
    base_quantums_per_unit: int


def make_quote(params: VaultParams, q: QuoteInputs) -> Quote:
    """The vault's quote around the mark (SPEC §11):

    inventory i = position / cap in [−1, 1] (ppm);
    half spread h = half_spread + vol_spread × σ_annual + inventory_spread × |i|;
    center c = mark × (1 − inventory_skew × i): long, both quotes move down, so it sells more
    readily than it buys (and the reverse short), which unwinds the inventory;
    bid = c × (1 − h) rounded down to the tick, ask = c × (1 + h) rounded up (both away from
    the mark: the spread is never narrower than asked);
    each side's size = the level's size at the mark, but never more than the room left under
    the cap on that side (the cap holds even if every quote fills), on the size step; a side
    smaller than the minimum order is not quoted."""
    mark = q.mark_price_quantums
    assert mark > 0 and q.cap_base_quantums >= 0, q
    cap = q.cap_base_quantums
    position = q.position_base_quantums
    inventory = 0 if cap == 0 else max(-PPM_ONE, min(PPM_ONE, div_floor(position * PPM_ONE, cap)))
    half = (
        params.half_spread_ppm
        + div_ceil(q.vol_annual_ppm * params.vol_spread_ppm, PPM_ONE)
        + div_ceil(abs(inventory) * params.inventory_spread_ppm, PPM_ONE)
    )
    half = min(half, PPM_ONE // 2)
    skew = div_floor(abs(inventory) * params.inventory_skew_ppm, PPM_ONE)
    center_ppm = PPM_ONE - skew if inventory > 0 else PPM_ONE + skew
    tick = q.tick_quantums
    bid = div_floor(mark * center_ppm * (PPM_ONE - half), PPM_ONE * PPM_ONE * tick) * tick
    ask = div_ceil(mark * center_ppm * (PPM_ONE + half), PPM_ONE * PPM_ONE * tick) * tick
    level = div_floor(q.level_quote_quantums * q.base_quantums_per_unit, mark)
    return Quote(
        bid_price_quantums=max(bid, tick),
        bid_base_quantums=_side_size(q, level, room_base_quantums(position, Side.BUY, cap)),
        ask_price_quantums=max(ask, 2 * tick),
        ask_base_quantums=_side_size(q, level, room_base_quantums(position, Side.SELL, cap)),
    )


def _side_size(q: QuoteInputs, level: int, room: int) -> int:
    size = min(level, room)
    size -= size % q.step_base_quantums
    return size if size >= q.min_order_base_quantums else 0


def moved_beyond(before_quantums: int, now_quantums: int, threshold_ppm: int) -> bool:
    """Has a price moved by at least ``threshold_ppm`` of where it was?"""
    return abs(now_quantums - before_quantums) * PPM_ONE >= threshold_ppm * before_quantums
