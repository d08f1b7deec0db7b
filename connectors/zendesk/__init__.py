"""Zendesk: tickets, their comments, end users, agents and organizations."""

from connectors.zendesk.connector import ZENDESK as ZENDESK
