"""Stripe: customers, invoices with their lines, payment intents, subscriptions; products, prices and charges
as records."""

from connectors.stripe.connector import STRIPE as STRIPE
