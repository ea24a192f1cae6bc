"""CSV cells that a spreadsheet opens as text, never as a formula (OWASP "CSV Injection"; ASVS 5.0 1.2.10).

Excel, LibreOffice Calc and Google Sheets evaluate a cell whose text starts with `=`, `+`, `-` or `@`
(and, after trimming, a tab, carriage return or NUL), so a name typed as `=cmd|' /C calc'!A0` runs a
command on the machine of whoever opens an export. The OWASP remedy is one `'` in front of such a cell:
spreadsheets read it as "this is text" and do not show it.

A cell that already starts with `'` gets one too. Then every exported cell starting with `'` carries
exactly one added `'`, and a program reading the file restores the value by removing it: exports whose
values must stay verifiable (the audit trail's hashes) document that one rule."""

from __future__ import annotations

from typing import Any

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\0")
TEXT_MARK = "'"


def spreadsheet_safe(value: Any) -> Any:
    """`value` as a CSV cell: text starting with a formula trigger or with `'` gets one `'` in front;
    anything else (other text, numbers, None) is returned unchanged."""
    if isinstance(value, str) and value.startswith((*FORMULA_TRIGGERS, TEXT_MARK)):
        return TEXT_MARK + value
    return value
