from connectors.salesforce.connector import SALESFORCE

__all__ = ["SALESFORCE"]
