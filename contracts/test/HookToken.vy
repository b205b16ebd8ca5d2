# pragma version ~=0.4.3
"""
@title An ERC-20 with hooks, for the custody tests' reentrancy cases
@notice After it moves tokens it calls back a hooked sender (transferFrom) or a hooked receiver
        (transfer), as tokens with transfer hooks do: what the custody contract must survive
        if its token is one. Anyone may mint, slash and hook. Never deploy it anywhere else.
"""


interface Hook:
    def on_tokens(): nonpayable


balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
hooked: public(HashMap[address, bool])


@external
def mint(receiver: address, amount: uint256):
    self.balanceOf[receiver] += amount


@external
def slash(holder: address, amount: uint256):
    self.balanceOf[holder] -= amount


@external
def hook(who: address):
    self.hooked[who] = True


@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    return True


@external
def transfer(receiver: address, amount: uint256) -> bool:
    self.balanceOf[msg.sender] -= amount
    self.balanceOf[receiver] += amount
    if self.hooked[receiver]:
        extcall Hook(receiver).on_tokens()
    return True


@external
def transferFrom(sender: address, receiver: address, amount: uint256) -> bool:
    self.allowance[sender][msg.sender] -= amount
    self.balanceOf[sender] -= amount
    self.balanceOf[receiver] += amount
    if self.hooked[sender]:
        extcall Hook(sender).on_tokens()
    return True
