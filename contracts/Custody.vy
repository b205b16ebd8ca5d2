# pragma version ~=0.4.3
"""
@title Clearhouse custody (SPEC §14)
@notice Holds the venue's quote token (an ERC-20). Deposits are logged with a unique id that the
        custody relayer turns into the engine's `Deposit`. Each epoch the sequencer commits the
        engine's state root, a withdrawals root and a liabilities root (Merkle sum trees built by
        `clearhouse liabilities`, hashed as `src/clearhouse/core/sum_tree.py` writes out).
        A withdrawal is paid against its epoch's withdrawals root once the dispute window has
        passed, during which the guardian may void the epoch. If no epoch is committed for
        `escape_delay` seconds, the contract freezes: every subaccount's owner is paid its
        liabilities leaf (pro rata if the assets fall short), and deposits the engine never
        credited are refunded to their depositors.
"""

from ethereum.ercs import IERC20

NODE_TAG: constant(uint256) = 1
LIABILITY_TAG: constant(uint256) = 2
WITHDRAWAL_TAG: constant(uint256) = 3
DEPTH_MAX: constant(uint256) = 32
AMOUNT_MAX: constant(uint256) = 2**128 - 1
SUM_MAX: constant(uint256) = (2**128 - 1) * 2**32
# The engine's bounds (core/limits.py): a deposit it would refuse is refused here first, so that
# the relayer can credit every deposit id in order.
SUBACCOUNTS_MAX: constant(uint256) = 128  # subaccounts_per_account_max
DEPOSIT_MAX: constant(uint256) = 10**24  # amount_quantums_max


struct Sibling:
    hash: bytes32
    sum: uint256


struct Epoch:
    state_root: bytes32
    withdrawals_root: bytes32
    withdrawals_total: uint256
    liabilities_root: bytes32
    total_liabilities: uint256
    last_deposit_id: uint256
    committed_at: uint256
    voided: bool


struct DepositRecord:
    owner: address
    amount: uint256
    cumulative: uint256  # every deposit's amount up to and including this one


event Deposited:
    deposit_id: indexed(uint256)
    owner: indexed(address)
    subaccount_number: uint256
    amount: uint256


event Committed:
    epoch: indexed(uint256)
    state_root: bytes32
    withdrawals_root: bytes32
    withdrawals_total: uint256
    liabilities_root: bytes32
    total_liabilities: uint256
    last_deposit_id: uint256


event Voided:
    epoch: indexed(uint256)


event WithdrawalClaimed:
    withdrawal_id: indexed(uint256)
    recipient: indexed(address)
    amount: uint256
    epoch: uint256


event Frozen:
    epoch: uint256
    assets: uint256
    liabilities: uint256


event EscapeClaimed:
    owner: indexed(address)
    subaccount_number: uint256
    amount: uint256
    paid: uint256


event DepositRefunded:
    deposit_id: indexed(uint256)
    owner: indexed(address)
    amount: uint256


# Every entry point that writes or pays is @nonreentrant (one lock for all): a token that calls
# back from a transfer (a hook) must find the contract closed. Review 14: frozen from a
# depositor's hook after its tokens moved but before its deposit was recorded, the contract
# counted that deposit among the liabilities' assets and refunded it as well, so the last
# escape found nothing left. The views stay open (they change nothing).
token: public(immutable(IERC20))
sequencer: public(immutable(address))
guardian: public(immutable(address))
dispute_window: public(immutable(uint256))
escape_delay: public(immutable(uint256))

next_deposit_id: public(uint256)
deposits: public(HashMap[uint256, DepositRecord])
epochs: public(HashMap[uint256, Epoch])
last_epoch: public(uint256)
last_commit_at: public(uint256)
# Committed (not voided) withdrawals not yet claimed: reserved, never counted as free assets.
outstanding_withdrawals: public(uint256)
withdrawal_claimed: public(HashMap[uint256, bool])

frozen: public(bool)
escape_epoch: public(uint256)
escape_assets: public(uint256)
escape_liabilities: public(uint256)
escape_claimed: public(HashMap[address, HashMap[uint256, bool]])
deposit_refunded: public(HashMap[uint256, bool])


@deploy
def __init__(
    _token: IERC20,
    _sequencer: address,
    _guardian: address,
    _dispute_window: uint256,
    _escape_delay: uint256,
):
    assert _sequencer != empty(address) and _guardian != empty(address), "zero role"
    assert _dispute_window > 0, "no dispute window"
    # The last epoch is final (its window over) before anyone may escape against it.
    assert _escape_delay > _dispute_window, "escape delay within the dispute window"
    token = _token
    sequencer = _sequencer
    guardian = _guardian
    dispute_window = _dispute_window
    escape_delay = _escape_delay
    self.next_deposit_id = 1
    # Epoch 0 stands for the deployment: no roots, no deposit credited, the escape clock's start.
    self.epochs[0].committed_at = block.timestamp
    self.last_commit_at = block.timestamp


@external
@nonreentrant
def deposit(amount: uint256, subaccount_number: uint256) -> uint256:
    """
    @notice Move `amount` of the token from the caller into custody, for its subaccount.
    @return The deposit's id (the engine credits each id once, in order).
    """
    assert not self.frozen, "frozen"
    assert amount > 0 and amount <= DEPOSIT_MAX, "bad amount"
    assert subaccount_number < SUBACCOUNTS_MAX, "bad subaccount"
    before: uint256 = staticcall token.balanceOf(self)
    assert extcall token.transferFrom(msg.sender, self, amount, default_return_value=True)
    # A token that takes a fee on transfer would leave less than the engine credits.
    assert staticcall token.balanceOf(self) == before + amount, "fee on transfer"
    deposit_id: uint256 = self.next_deposit_id
    self.next_deposit_id = deposit_id + 1
    self.deposits[deposit_id] = DepositRecord(
        owner=msg.sender, amount=amount, cumulative=self.deposits[deposit_id - 1].cumulative + amount
    )
    log Deposited(deposit_id=deposit_id, owner=msg.sender, subaccount_number=subaccount_number, amount=amount)
    return deposit_id


@view
@internal
def _uncredited(last_deposit_id: uint256) -> uint256:
    # Deposits after `last_deposit_id`: in custody, not yet anyone's liability in the engine.
    return (
        self.deposits[self.next_deposit_id - 1].cumulative
        - self.deposits[last_deposit_id].cumulative
    )


@external
@nonreentrant
def commit(
    epoch: uint256,
    state_root: bytes32,
    withdrawals_root: bytes32,
    withdrawals_total: uint256,
    liabilities_root: bytes32,
    total_liabilities: uint256,
    last_deposit_id: uint256,
):
    """
    @notice The sequencer commits epoch `epoch` (the next one): the engine's state root, the
            withdrawals tree of its blocks and the liabilities tree at its end. Refused unless
            the assets cover the liabilities, the withdrawals still owed and this epoch's.
    """
    assert msg.sender == sequencer, "not the sequencer"
    assert not self.frozen, "frozen"
    assert epoch == self.last_epoch + 1, "not the next epoch"
    assert last_deposit_id < self.next_deposit_id, "credits a deposit never made"
    assert last_deposit_id >= self.epochs[self.last_epoch].last_deposit_id, "deposit ids go back"
    assert withdrawals_total <= SUM_MAX and total_liabilities <= SUM_MAX, "total out of range"
    owed: uint256 = total_liabilities + self.outstanding_withdrawals + withdrawals_total
    held: uint256 = staticcall token.balanceOf(self)
    assert owed + self._uncredited(last_deposit_id) <= held, "liabilities exceed assets"
    self.epochs[epoch] = Epoch(
        state_root=state_root,
        withdrawals_root=withdrawals_root,
        withdrawals_total=withdrawals_total,
        liabilities_root=liabilities_root,
        total_liabilities=total_liabilities,
        last_deposit_id=last_deposit_id,
        committed_at=block.timestamp,
        voided=False,
    )
    self.last_epoch = epoch
    self.last_commit_at = block.timestamp
    self.outstanding_withdrawals += withdrawals_total
    log Committed(
        epoch=epoch,
        state_root=state_root,
        withdrawals_root=withdrawals_root,
        withdrawals_total=withdrawals_total,
        liabilities_root=liabilities_root,
        total_liabilities=total_liabilities,
        last_deposit_id=last_deposit_id,
    )


@external
@nonreentrant
def void(epoch: uint256):
    """
    @notice The guardian voids the latest epoch within its dispute window: nothing is paid
            against it, and the sequencer commits that epoch number again. Earlier epochs are
            voided one call at a time, latest first, each within its own window.
    """
    assert msg.sender == guardian, "not the guardian"
    assert not self.frozen, "frozen"
    assert epoch >= 1 and epoch == self.last_epoch, "not the latest epoch"
    record: Epoch = self.epochs[epoch]
    assert block.timestamp < record.committed_at + dispute_window, "dispute window over"
    self.epochs[epoch].voided = True
    self.last_epoch = epoch - 1
    self.outstanding_withdrawals -= record.withdrawals_total
    # The escape clock runs from the last commit still standing.
    self.last_commit_at = self.epochs[epoch - 1].committed_at
    log Voided(epoch=epoch)


@pure
@internal
def _fold(
    leaf: bytes32, amount: uint256, index: uint256, siblings: DynArray[Sibling, DEPTH_MAX]
) -> (bytes32, uint256):
    # The root a proof leads to (core/sum_tree.py, `fold`): sums checked at every level.
    assert len(siblings) >= 1, "empty proof"
    assert amount <= AMOUNT_MAX, "amount out of range"
    node_hash: bytes32 = leaf
    node_sum: uint256 = amount
    path: uint256 = index
    for sibling: Sibling in siblings:
        assert sibling.sum <= SUM_MAX, "sum out of range"
        if path % 2 == 1:
            node_hash = keccak256(abi_encode(NODE_TAG, sibling.hash, sibling.sum, node_hash, node_sum))
        else:
            node_hash = keccak256(abi_encode(NODE_TAG, node_hash, node_sum, sibling.hash, sibling.sum))
        node_sum += sibling.sum
        assert node_sum <= SUM_MAX, "sum out of range"
        path //= 2
    assert path == 0, "index out of range"
    return node_hash, node_sum


@internal
def _pay(recipient: address, amount: uint256):
    # Never more than the contract holds (a transfer would revert; say why first).
    assert amount <= staticcall token.balanceOf(self), "not held"
    if amount > 0:
        assert extcall token.transfer(recipient, amount, default_return_value=True)


@external
@nonreentrant
def claim_withdrawal(
    epoch: uint256,
    withdrawal_id: uint256,
    recipient: address,
    amount: uint256,
    index: uint256,
    siblings: DynArray[Sibling, DEPTH_MAX],
):
    """
    @notice Pay a withdrawal of a committed epoch to its recipient, once its dispute window
            has passed; each withdrawal id once. Anyone may send it: the recipient is paid.
    """
    assert epoch >= 1 and epoch <= self.last_epoch, "no such epoch"
    record: Epoch = self.epochs[epoch]
    assert not record.voided, "voided"
    assert block.timestamp >= record.committed_at + dispute_window, "in the dispute window"
    assert not self.withdrawal_claimed[withdrawal_id], "already claimed"
    leaf: bytes32 = keccak256(abi_encode(WITHDRAWAL_TAG, withdrawal_id, recipient, amount))
    root: bytes32 = empty(bytes32)
    total: uint256 = 0
    root, total = self._fold(leaf, amount, index, siblings)
    assert root == record.withdrawals_root and total == record.withdrawals_total, "bad proof"
    self.withdrawal_claimed[withdrawal_id] = True
    self.outstanding_withdrawals -= amount
    self._pay(recipient, amount)
    log WithdrawalClaimed(withdrawal_id=withdrawal_id, recipient=recipient, amount=amount, epoch=epoch)


@internal
def _freeze():
    assert block.timestamp >= self.last_commit_at + escape_delay, "escape hatch closed"
    self.frozen = True
    epoch: uint256 = self.last_epoch
    self.escape_epoch = epoch
    record: Epoch = self.epochs[epoch]
    # What the liabilities share: all held, less the withdrawals still owed and the deposits
    # the engine never credited (both paid in full).
    reserved: uint256 = self.outstanding_withdrawals + self._uncredited(record.last_deposit_id)
    held: uint256 = staticcall token.balanceOf(self)
    assets: uint256 = 0
    if held > reserved:
        assets = held - reserved
    self.escape_assets = assets
    self.escape_liabilities = record.total_liabilities
    log Frozen(epoch=epoch, assets=assets, liabilities=record.total_liabilities)


@external
@nonreentrant
def freeze():
    """
    @notice Anyone may freeze the contract once no epoch was committed for `escape_delay`.
    """
    assert not self.frozen, "frozen"
    self._freeze()


@external
@nonreentrant
def escape(
    owner: address,
    subaccount_number: uint256,
    amount: uint256,
    salt: bytes32,
    index: uint256,
    siblings: DynArray[Sibling, DEPTH_MAX],
):
    """
    @notice The escape hatch: pay a subaccount's liability against the last committed
            liabilities root, once, to its owner; pro rata (rounded down) if the assets that
            remain for liabilities fall short of their total.
    """
    if not self.frozen:
        self._freeze()
    epoch: uint256 = self.escape_epoch
    assert epoch >= 1, "no liabilities committed"
    assert not self.escape_claimed[owner][subaccount_number], "already claimed"
    record: Epoch = self.epochs[epoch]
    leaf: bytes32 = keccak256(abi_encode(LIABILITY_TAG, owner, subaccount_number, amount, salt))
    root: bytes32 = empty(bytes32)
    total: uint256 = 0
    root, total = self._fold(leaf, amount, index, siblings)
    assert root == record.liabilities_root and total == record.total_liabilities, "bad proof"
    self.escape_claimed[owner][subaccount_number] = True
    paid: uint256 = amount
    if self.escape_assets < self.escape_liabilities:
        paid = amount * self.escape_assets // self.escape_liabilities
    self._pay(owner, paid)
    log EscapeClaimed(owner=owner, subaccount_number=subaccount_number, amount=amount, paid=paid)


@external
@nonreentrant
def refund_deposit(deposit_id: uint256):
    """
    @notice Once frozen, a deposit the last committed epoch had not credited goes back to its
            depositor, once.
    """
    assert self.frozen, "not frozen"
    assert deposit_id < self.next_deposit_id, "no such deposit"
    assert deposit_id > self.epochs[self.escape_epoch].last_deposit_id, "credited"
    assert not self.deposit_refunded[deposit_id], "already refunded"
    self.deposit_refunded[deposit_id] = True
    record: DepositRecord = self.deposits[deposit_id]
    self._pay(record.owner, record.amount)
    log DepositRefunded(deposit_id=deposit_id, owner=record.owner, amount=record.amount)
