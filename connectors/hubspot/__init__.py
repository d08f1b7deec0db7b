from connectors.hubspot.connector import HUBSPOT

__all__ = ["HUBSPOT"]
