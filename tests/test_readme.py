"""The README's connector table says what the registry says: each connector's declaration size, its streams
and the common models they map to, and where its sandbox is.

When a connector changes, print the rows to paste with `python -m tests.test_readme`.
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

from connectors import CONNECTORS, sandbox_entries
from connectors.kit.declaration import Connector

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
TABLE_HEADING = "### Connectors"
TABLE_HEADER = (
    "| provider | declaration (lines of code: no blanks, comments or docstrings) | streams → common models | sandbox |"
)
UPDATE_HINT = "Run `python -m tests.test_readme` and replace the table's rows under '### Connectors' with its output."


def lines_of_code(source: str) -> int:
    """Lines holding code: blank lines, comments and docstrings (module, class, function) do not count."""
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            text = first.value.value if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) else None
            if isinstance(text, str):
                docstrings.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    layout = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
    code: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in layout:
            code.update(range(token.start[0], token.end[0] + 1))
    return len(code - docstrings)


def declaration_sizes(connector: Connector) -> list[tuple[str, int]]:
    """The connector's own modules (its sandbox and tests aside), biggest first."""
    package = ROOT / "connectors" / connector.name
    sizes = [(path.name, lines_of_code(path.read_text())) for path in sorted(package.glob("*.py"))]
    return sorted((size for size in sizes if size[1]), key=lambda size: (-size[1], size[0]))


def table_row(connector: Connector) -> str:
    sizes = declaration_sizes(connector)
    total = sum(lines for _, lines in sizes)
    modules = ", ".join(f"`{name}` {lines}" for name, lines in sizes)
    streams = ", ".join(
        f"{stream.name} → {stream.mapping.model.name if stream.mapping else 'raw only'}" for stream in connector.streams
    )
    # Where sandbox_entries() finds the connector's SANDBOX.
    sandbox = ROOT / "connectors" / connector.name / "sandbox"
    assert connector.name in sandbox_entries() and (sandbox / "__init__.py").is_file()
    return f"| {connector.display_name} | {total} ({modules}) | {streams} | `{sandbox.relative_to(ROOT)}/` |"


def expected_rows() -> list[str]:
    return [table_row(connector) for connector in CONNECTORS.values()]


def readme_rows() -> list[str]:
    lines = README.read_text().splitlines()
    start = lines.index(TABLE_HEADING)
    header = lines.index(TABLE_HEADER, start)
    rows = []
    for line in lines[header + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def test_the_connector_table_matches_the_registry() -> None:
    expected, actual = expected_rows(), readme_rows()
    missing = [row for row in expected if row not in actual]
    stale = [row for row in actual if row not in expected]
    assert not missing and not stale, (
        "README.md's connector table is out of date.\n"
        + "".join(f"  stale:   {row}\n" for row in stale)
        + "".join(f"  missing: {row}\n" for row in missing)
        + UPDATE_HINT
    )


def test_lines_of_code_skip_blanks_comments_and_docstrings() -> None:
    source = '''"""Module docstring,
over two lines."""

import os  # a comment on a code line counts


class Thing:
    """Docstring."""

    # a comment line
    value = (
        1
    )

    def run(self) -> str:
        return """not a docstring:
a string value"""
'''
    # import, class, value over three lines, def, return over two lines.
    assert lines_of_code(source) == 8


if __name__ == "__main__":
    print("\n".join(expected_rows()))
