"""The Python SDK: sign commands with a local or agent key, submit, query, and subscribe.

from clearhouse.client import Client, Wallet

wallet = Wallet.create()
client = Client("http://127.0.0.1:8400", wallet)
client.place_order("BTC-PERP", "buy", size_base_quantums=1_000_000, price_quantums=...)
"""

from clearhouse.client.http import ApiRejection, Client
from clearhouse.client.stream import Stream
from clearhouse.client.wallet import Wallet

__all__ = ["ApiRejection", "Client", "Stream", "Wallet"]
