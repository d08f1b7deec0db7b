"""What Stripe objects hold for a mapping: Stripe has no field metadata, and what an account adds to its objects
is `metadata` (string keys and values), so each model's catalog is the metadata keys seen on the connection's
cached objects of that model (`metadata.plan`), read by the cache, never asked of Stripe."""

from __future__ import annotations

from connectors.kit.field_catalog import FieldCatalog, SeenKeys

_METADATA = SeenKeys("metadata", label_prefix="Metadata: ")

METADATA_CATALOGS: dict[str, FieldCatalog] = {
    model: _METADATA for model in ("Customer", "Invoice", "Payment", "BillingSubscription")
}
