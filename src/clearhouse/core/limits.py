"""Every bound in Clearhouse, in one place (TigerBeetle's static limits).

Every loop over user-controlled data is bounded by one of these. Import-time asserts relate them.
"""

from __future__ import annotations

# Book and orders.
orders_per_book_max = 200_000  # resting orders in one market's book
open_orders_per_subaccount_max = 256  # resting + conditional orders of one subaccount
trigger_orders_per_market_max = 50_000  # stop / take-profit orders waiting on the mark
trigger_orders_per_subaccount_max = 32  # they need no margin until they fire: keep them few
fills_per_order_max = 1_000  # makers one taker may match in one command
stp_cancels_per_order_max = 256  # resting orders self-trade prevention may cancel in one command
# Reduce-only makers past flat one walk lists to cancel (it skips any more, which stay resting).
reduce_only_cancels_per_order_max = fills_per_order_max
maker_rejections_per_order_max = 64  # makers cancelled for failing margin during one match
triggers_per_block_max = 1_000  # conditional orders fired per block per market
# The book the triggers fired in one block may walk, per market: maker orders met by their
# matches' plans (fills, own and reduce-only orders passed, each re-plan again). Past it, the
# block fires no more and the rest are reached first next block. A trigger's match was bounded
# only by one order's (``fills_per_order_max`` makers, each margin-checked): 1,024 stops armed
# in 0.14 ms each, each a market buy through a 1,000-maker wall its owner could not carry,
# held one block for 34.9 s when the mark reached them.
trigger_book_walk_per_block_max = 2 * fills_per_order_max

# Liquidation.
liquidations_per_block_max = 2_000  # protocol ladder steps per block (keepers add more)
depth_levels_max = 1_000  # price levels a position cap reads from one side of the book
adl_counterparties_per_step_max = 512  # opposite positions one deleveraging may close

# Options.
payoff_kinks_max = 16  # breakpoints of one piecewise-linear payoff
surface_slices_max = 16  # expiries of one published volatility surface
expiry_horizon_ns = 3 * 365 * 24 * 3600 * 10**9  # dated markets and surface slices: 3 years out
# A surface's slice may carry its publisher's forward as a basis to the index, (F − S)/S in parts
# per million: at most ±50% (BTC's quarterly futures peaked near 40% a year of carry in 2021; a
# forward half or one and a half times spot is a publisher's bug, refused SURFACE_FORWARD_INVALID).
forward_basis_ppm_max = 500_000
# Where the publishers report an expiry's forward, the venue's own futures curve moves an
# option's forward at most this far from it (``core/engine/forwards.py``): a book nobody trades
# can hold a future's mark at its band (1% and more) for free; 0.25% of reach is the forward's
# own revaluation step (``marks.RISK_REVALUE_MOVE_PPM``) and under a tenth of an option writer's
# usual maintenance headroom.
reported_forward_tolerance_ppm = 2_500
option_series_strikes_max = 15  # strikes per expiry the default series lists
option_series_expiries_max = 4  # expiries (weekly and monthly) the default series keeps listed
# (short, long) option pairs standard mode examines for a covering spread per margin check: a
# 256-position book could ask 128 × 128; past this bound the rest are margined alone (more).
spread_pairs_examined_max = 1_024

# Accounts.
subaccounts_per_account_max = 128  # subaccount numbers are 0..127
positions_per_subaccount_max = 256  # markets one subaccount may hold at once (a dealer's book)
collateral_assets_max = 8  # assets one venue accepts as collateral
nonces_kept_per_signer = 100  # the set keeps the highest 100 (Hyperliquid's scheme)
# A key's nonce set is dropped once its newest nonce is older than the venue's nonce window
# (every nonce it holds would be refused as too old): at most this many a block, the rest the
# next (a million keys made on one day all age out together two days later).
nonce_sets_forgotten_per_block_max = 1_000
agents_per_account_max = 8  # trading keys an account may authorize at once
agent_validity_max_ns = 180 * 24 * 3600 * 10**9  # an agent's authorization lasts at most 180 days
client_order_id_max = 2**63 - 1
# A dead-man's switch (``ScheduleCancel``) fires at least 5 s after it is set (Hyperliquid's
# bound: it cannot be a disguised cancel-all racing the book) and at most a day ahead.
scheduled_cancel_delay_min_ns = 5 * 10**9
scheduled_cancel_horizon_max_ns = 24 * 3600 * 10**9

# The market-making vault (SPEC §11).
vault_markets_max = 16  # markets the vault quotes and backstops
vault_owners_max = 1_000_000  # depositors holding shares at once
vault_lockup_ns_max = 30 * 24 * 3600 * 10**9  # shares locked at most 30 days after a deposit

# The options vault (SPEC §11, the options AMM).
options_vault_markets_max = 120  # option markets it quotes at once (a bid and an ask each)
options_vault_positions_reserved = 1  # positions kept free for the hedge on the perpetual
options_vault_requotes_per_block_max = 8  # markets requoted a block for drift alone: each order
# placed is a margin check of its whole book; the rest wait, their sides past the mark cancelled

# Governance (SPEC §10).
council_members_max = 16
open_proposals_max = 64  # pending or queued at once: a proposal spam cannot grow state forever
actions_per_proposal_max = 32
proposal_memo_length_max = 1_000  # characters of the proposer's description
proposal_simulation_length_max = 16_000  # characters of the attached stress-lab diff (JSON)
param_history_kept = 8  # past changes each governed parameter's leaf keeps (the API has all)
disputes_per_market_max = 1_024  # addresses that disputed one market's fallback price
# ... of which holders, all together: each dispute sends governance back to its timelock and
# window (~3 days), so holders' addresses, as many as anyone cares to fund, could otherwise
# keep an expired market unsettled for years (§8: funds are never stuck).
holder_disputes_per_market_max = 3

# Markets and oracles.
markets_max = 256
assets_max = 16
oracles_max = 64
publishers_per_oracle_max = 32
quotes_per_oracle_max = 4  # quote currencies besides USD an oracle converts (USDT, USDC, ...)
quote_length_max = 8  # a quote currency's name: 1-8 upper-case letters or digits
reports_per_command_max = 64  # one publisher may report every feed it serves in one command
twap_samples_max = 512  # per oracle: enough for 30 min at one sample every 5 s, with margin

# Blocks.
commands_per_block_max = 20_000
# A fill emits at most 5 events (the trade, two PnL and two fee transfers); every other event of a
# command cancels, resizes or rests a distinct order, or is one of a few fixed ones.
events_per_command_max = 5 * fills_per_order_max + 2 * orders_per_book_max + 64

# Numbers that keep integer products well inside what a 64-bit counterparty could represent.
amount_quantums_max = 10**24
size_base_quantums_max = 10**20
price_quantums_max = 10**18
vault_shares_max = amount_quantums_max * 10**12  # a vault share is 10⁻⁶ quantum at the start
integer_max = 2**63 - 1  # every other integer of a command: ids, nonces, times, parts per …


def integer_field_max(name: str) -> int:
    """The largest magnitude an integer field of a command may hold, by the unit its name ends
    in (``core/units.py``). The node refuses a command with a larger one (VALUE_OUT_OF_RANGE)
    before it is signed, queued or journaled; the engine's own checks stay tighter."""
    if name.endswith("base_quantums"):
        return size_base_quantums_max
    if name.endswith("price_quantums"):
        return price_quantums_max
    if "quantums" in name:
        return amount_quantums_max
    if name == "shares":
        return vault_shares_max
    if name == "value":  # a governed parameter's new value: some are amounts in quantums
        return amount_quantums_max
    return integer_max


# Text and lists in a command, refused by the node where it reads one (VALUE_OUT_OF_RANGE),
# before it hashes, recovers, queues or journals it: the engine's own checks come only once a
# command is in its block, and a field of megabytes costs the node to read and the journal to
# keep even when the engine refuses it. Ids are at most 32 characters, addresses 42.
text_length_max = 128
list_length_max = 64  # any list not named in list_field_length_max

# A liabilities proof file (``verify-liabilities``, SPEC §14): at most 32 siblings, ~7 KB as
# ``liabilities`` writes it. Refused before it is parsed past these: the whole file is not read,
# and no JSON nests deeper than the proof's own three levels (an object, its siblings list,
# each sibling) by much. JSON nested 100,000 deep crashed the parser (RecursionError on the
# command line, a segmentation fault under pytest's stack), review 14.
proof_bytes_max = 64 * 1024
proof_brackets_max = 64  # '[' and '{' anywhere in the text: a proof has 34 at most


def text_field_length_max(name: str) -> int:
    """The longest a text field of a command may be, by its name."""
    if name == "memo":
        return proposal_memo_length_max
    if name == "simulation":
        return proposal_simulation_length_max
    return text_length_max


def list_field_length_max(name: str) -> int:
    """The most items a list field of a command may hold, by its name: the engine's own bound
    where it has one (a longer list it would refuse anyway)."""
    return {
        "reports": reports_per_command_max, "slices": surface_slices_max,
        "actions": actions_per_proposal_max, "council": council_members_max,
        "publishers": publishers_per_oracle_max, "quotes": quotes_per_oracle_max,
        "kinks": payoff_kinks_max, "markets": vault_markets_max,
    }.get(name, list_length_max)  # fmt: skip


assert fills_per_order_max <= orders_per_book_max
assert open_orders_per_subaccount_max <= orders_per_book_max
assert trigger_orders_per_subaccount_max <= open_orders_per_subaccount_max
assert positions_per_subaccount_max <= markets_max
assert publishers_per_oracle_max >= 3, "a median needs at least three publishers to reject one liar"
assert twap_samples_max >= 30 * 60 // 5
assert nonces_kept_per_signer > 0
assert 2 * vault_markets_max <= open_orders_per_subaccount_max, "a bid and an ask per market"
assert vault_markets_max <= positions_per_subaccount_max
assert 2 * options_vault_markets_max <= open_orders_per_subaccount_max, "a bid and an ask each"
assert options_vault_positions_reserved < positions_per_subaccount_max
assert client_order_id_max <= integer_max
assert 0 < reported_forward_tolerance_ppm < forward_basis_ppm_max < 1_000_000
assert max(size_base_quantums_max, price_quantums_max) <= amount_quantums_max <= vault_shares_max
