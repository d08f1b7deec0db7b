"""Adding a connector is a checklist, and this test holds every registered connector to it.

Each step of docs/adding-a-connector.md's checklist is checked here for each connector in `CONNECTORS`: its
declaration files, its sandbox entry, that the conformance suite, `xkit dev` and (when it writes) the
writeback harness pick it up, and its README row.
"""

from __future__ import annotations

import re
from contextlib import ExitStack
from pathlib import Path

import pytest

from connectors import CONNECTORS, sandbox_entries
from gateway.dev import serve_sandboxes
from gateway.settings import Settings
from tests.conformance import PROVIDERS
from tests.support import free_port
from tests.test_readme import readme_rows
from tests.test_writeback import WRITEBACK

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "adding-a-connector.md"
# Every place a connector touches or is picked up in, as the guide's checklist names them (`<name>` is the
# connector's); each exists for every registered connector.
PLACES = (
    "connectors/<name>/connector.py",
    "connectors/<name>/mapping.py",
    "connectors/<name>/errors.py",
    "connectors/<name>/sandbox/__init__.py",
    "connectors/<name>/sandbox/driver.py",
    "connectors/__init__.py",
    "connectors/kit/models.py",
    "connectors/kit/registry.py",
    "gateway/dev.py",
    "tests/conformance.py",
    "tests/test_writeback.py",
    "tests/test_readme.py",
    "README.md",
)


def checklist() -> str:
    text = GUIDE.read_text()
    match = re.search(r"^## Checklist\n(.*?)(?=^## |\Z)", text, flags=re.MULTILINE | re.DOTALL)
    assert match, "docs/adding-a-connector.md has no '## Checklist' section"
    return match.group(1)


def test_the_guide_checklist_names_every_place() -> None:
    section = checklist()
    missing = [place for place in PLACES if f"`{place}`" not in section]
    assert not missing, f"docs/adding-a-connector.md's checklist does not name {missing}"


@pytest.mark.parametrize("name", sorted(CONNECTORS))
def test_the_connector_has_every_file(name: str) -> None:
    missing = [place for place in PLACES if not (ROOT / place.replace("<name>", name)).is_file()]
    assert not missing, f"{name} lacks {missing}"


@pytest.mark.parametrize("name", sorted(CONNECTORS))
def test_the_conformance_suite_runs_it(name: str) -> None:
    assert name in PROVIDERS
    driver = sandbox_entries()[name].conformance()
    connector = CONNECTORS[name]
    assert driver.provider == name
    assert driver.main_stream in connector.stream_names
    # The suite compares the cache with the sandbox's ground truth for every stream: each must have records.
    empty = [stream for stream in connector.stream_names if not driver.expected_ids(stream)]
    assert not empty, f"{name}'s conformance sandbox seeds nothing in {empty}"


@pytest.mark.parametrize("name", sorted(CONNECTORS))
def test_the_writeback_harness_covers_every_writer(name: str) -> None:
    connector = CONNECTORS[name]
    writable = {s.mapping.model.name for s in connector.streams if s.writer is not None and s.mapping is not None}
    entry = sandbox_entries()[name]
    if not writable:
        assert entry.writeback is None and name not in WRITEBACK
        return
    assert entry.writeback is not None and name in WRITEBACK, f"{name} writes but has no writeback driver"
    driver = entry.writeback()
    assert set(driver.cases()) == writable
    assert set(driver.write_streams) == writable
    for model, stream in driver.write_streams.items():
        assert connector.stream(stream).writer is not None, (model, stream)
        assert driver.ids(model), f"{name}'s writeback sandbox seeds no {model} to relate writes to"


# A bind lost to another worker leaves its listening socket to the collector; the retry below is what matters.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_xkit_dev_serves_and_connects_every_connector() -> None:
    with ExitStack() as stack:
        # The sandboxes take the ports after the gateway's; another test worker may hold one of them by chance.
        for attempt in range(5):
            settings = Settings(port=free_port(), egress_allow=[])
            try:
                allowed, drivers, demos = serve_sandboxes(stack, settings, contacts=10)
                break
            except OSError:
                stack.close()
                if attempt == 4:
                    raise
        assert [demo.provider for demo in demos] == list(CONNECTORS)
        stripe_key = next(demo for demo in demos if demo.provider == "stripe").credentials.api_key
        assert stripe_key is not None and stripe_key.startswith("sk_test_")  # xkit dev connects Stripe with a test key
        for demo in demos:
            # OAuth tokens, or a key where that is how the provider's users connect (Stripe).
            assert demo.records > 0 and (demo.credentials.access_token or demo.credentials.api_key)
            assert demo.app.client_id and (demo.base_url or CONNECTORS[demo.provider].base_url_from_credentials)
        # Egress lets exactly the sandboxes through, each on the ports after the gateway's.
        ports = [int(target.rsplit(":", 1)[1]) for target in allowed.egress_allow]
        assert ports == list(range(settings.port + 1, settings.port + 1 + sum(d.ports for d in drivers)))


@pytest.mark.parametrize("name", sorted(CONNECTORS))
def test_the_readme_table_has_a_row(name: str) -> None:
    rows = [row for row in readme_rows() if row.startswith(f"| {CONNECTORS[name].display_name} |")]
    assert len(rows) == 1, f"README.md's connector table needs one row for {name}; see tests/test_readme.py"
