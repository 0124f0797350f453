r"""The text form of GET /: one message per line, so a message's own line breaks are escaped.

Backslash escapes as in JSON strings: "\\" for a backslash, "\n" and "\r" for LF and CR, and
"\uXXXX" for the other characters that some readers take as a line break (VT, FF, FS, GS,
RS, NEL, LS, PS: Python's str.splitlines does). Every other character is itself.
"""

from __future__ import annotations

from collections.abc import Iterable

_ESCAPES = {ord("\\"): "\\\\", ord("\n"): "\\n", ord("\r"): "\\r"}
_ESCAPES.update(
    {code: f"\\u{code:04x}" for code in (0x0B, 0x0C, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029)}
)


def escape_line(text: str) -> str:
    return text.translate(_ESCAPES)


def render_lines(lines: Iterable[str]) -> str:
    return "".join(f"{escape_line(line)}\n" for line in lines)
