"""The dead-man's switch (``ScheduleCancel``): a subaccount's orders are all cancelled at the
first block whose time reaches its scheduled time, unless the owner moves or clears it first.

Cancel-on-disconnect as a venue can offer it without trusting the node to cancel for anyone:
the trader's own signed command sets the deadline, and its client keeps pushing it later while
it is alive (Hyperliquid's ``scheduleCancel``, Deribit's cancel-on-disconnect). A block fires
only the switches that are due, in time order, so its cost is what fires, not the venue's size.
"""

from __future__ import annotations

from clearhouse.core import limits
from clearhouse.core.engine.context import Context, Rejected, check_subaccount_number, mutated
from clearhouse.core.engine.trading.resting import cancel_any
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import SubaccountId
from clearhouse.core.messages import CancelCause, CancelScheduled, ScheduleCancel


def schedule_cancel(ctx: Context, command: ScheduleCancel) -> None:
    check_subaccount_number(command.subaccount_number)
    owner = SubaccountId(command.signer, command.subaccount_number)
    at_ns = command.cancel_at_ns
    now_ns = ctx.state.timestamp_ns
    soonest_ns = now_ns + limits.scheduled_cancel_delay_min_ns
    latest_ns = now_ns + limits.scheduled_cancel_horizon_max_ns
    if at_ns != 0 and not soonest_ns <= at_ns <= latest_ns:
        raise Rejected(RejectReason.SCHEDULE_OUT_OF_RANGE)
    mutated(ctx)
    _unschedule(ctx, owner)
    if at_ns:
        ctx.state.scheduled_cancels[owner] = at_ns
        ctx.derived.cancel_queue.add((at_ns, owner))
    ctx.events.append(CancelScheduled(subaccount=str(owner), cancel_at_ns=at_ns))


def fire_scheduled_cancels(ctx: Context) -> None:
    """Cancel every order of each subaccount whose switch is due, earliest first (a block step,
    before anything can trade against those orders)."""
    queue = ctx.derived.cancel_queue
    now_ns = ctx.state.timestamp_ns
    while queue and queue[0][0] <= now_ns:
        _, owner = queue[0]
        _unschedule(ctx, owner)
        subaccount = ctx.state.ledger.subaccounts.get(owner)
        if subaccount is None:
            continue
        for order_id in sorted(subaccount.order_ids):
            cancel_any(ctx, order_id, CancelCause.SCHEDULED)


def _unschedule(ctx: Context, owner: SubaccountId) -> None:
    at_ns = ctx.state.scheduled_cancels.pop(owner, None)
    if at_ns is not None:
        ctx.derived.cancel_queue.remove((at_ns, owner))
        ctx.touched.scheduled_cancels.add(owner)
