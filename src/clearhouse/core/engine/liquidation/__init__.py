"""Liquidation (§7): status, insolvency, auctions and the ladder."""
