"""CSV cells that staff open in a spreadsheet.

Text that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is run as a formula by
Excel and LibreOffice (CSV injection): a property reference, an estate name or an e-mail typed
by one person could then run in another's spreadsheet. Such text gets a leading apostrophe,
which spreadsheets show as plain text. Numbers and timestamps are written as they are.
"""

from __future__ import annotations

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def text_cell(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_START) else value
