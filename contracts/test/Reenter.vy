# pragma version ~=0.4.3
"""
@title A holder that calls back into a contract from a token's hook (custody tests only)
@notice `arm` keeps a call (its calldata); the next `on_tokens` makes it once, and records
        whether it went through.
"""


interface Token:
    def approve(spender: address, amount: uint256) -> bool: nonpayable


target: public(address)
data: public(Bytes[4096])
armed: public(bool)
reentered: public(bool)
succeeded: public(bool)


@external
def arm(target: address, data: Bytes[4096]):
    self.target = target
    self.data = data
    self.armed = True


@external
def approve(token: address, spender: address, amount: uint256):
    extcall Token(token).approve(spender, amount)


@external
def call(target: address, data: Bytes[4096]):
    raw_call(target, data)


@external
def on_tokens():
    if self.armed:
        self.armed = False
        self.reentered = True
        self.succeeded = raw_call(self.target, self.data, revert_on_failure=False)
