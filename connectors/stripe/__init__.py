"""Stripe: customers, invoices with their lines, payment intents, subscriptions; products, prices, charges
and refunds as records."""

from connectors.stripe.connector import STRIPE as STRIPE
