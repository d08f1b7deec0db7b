"""The writeback suite's cases for the CRM models, alike on every CRM: a connector's sandbox driver names
the seeded records to relate to, where its custom fields land and its own words for stages and statuses."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from connectors.kit.registry import WriteCase


def crm_write_cases(
    related: tuple[str, str, str],
    custom: Mapping[str, tuple[str, Any]],
    raw_path: str,
    *,
    deal_stage: str,
    task_open: str,
    task_done: str,
    task_priority: str,
    task_due_at: str,
) -> dict[str, WriteCase]:
    """A create and an update of each CRM model, relating to the seeded (company, contact, deal). Amounts are
    in USD, EUR and JPY: the account keeps its amounts in USD and lets a deal be in the other two.

    `custom` names a provider field per model, sent in `rawFields`, which lands in the raw record at
    `raw_path` formatted with its name. Stages, statuses and priorities are the provider's own words;
    `task_due_at` is as the provider stores it (a date-only field comes back at midnight).
    """
    company, contact, deal = related
    creates: dict[str, dict[str, Any]] = {
        "Contact": {
            "firstName": "Ada",
            "lastName": "Lovelace",
            "email": f"ada.{uuid.uuid4().hex[:8]}@engines.example",
            "jobTitle": "Engineer",
            "companyRemoteId": company,
        },
        "Company": {"name": "Analytical Engines", "domain": "engines.example", "employeeCount": 12},
        "Deal": {
            "name": "Engine order",
            # In another currency than the account's: the deal's currency is written with it.
            "amount": {"amount": "1234.50", "currency": "EUR"},
            "stage": deal_stage,
            "closeDate": "2027-01-15T00:00:00+00:00",
            "companyRemoteId": company,
            "contactRemoteIds": [contact],
        },
        "Note": {"body": "Called about the engine order", "contactRemoteIds": [contact]},
        "Task": {
            "subject": "Send the quote",
            "status": task_open,
            "priority": task_priority,
            "dueAt": task_due_at,
            "dealRemoteIds": [deal],
        },
    }
    updates: dict[str, dict[str, Any]] = {
        "Contact": {"jobTitle": "CTO", "phone": "+44 20 7946 0000"},
        "Company": {"city": "London", "annualRevenue": {"amount": "2500000.00", "currency": "USD"}},
        # A currency without decimals, and a change of the deal's currency.
        "Deal": {"stage": "Closed Won", "amount": {"amount": "2000", "currency": "JPY"}},
        "Note": {"body": "Called twice about the engine order", "dealRemoteIds": [deal]},
        "Task": {"status": task_done, "contactRemoteIds": [contact]},
    }
    return {
        model: WriteCase(create, dict([custom[model]]), raw_path.format(custom[model][0]), updates[model])
        for model, create in creates.items()
    }
