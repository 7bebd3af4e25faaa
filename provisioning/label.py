"""Labels for the sensor's case: a QR code of device id and property reference.

PNG labels hold the QR code alone (segno writes PNG without an imaging library); PDF labels
add the same facts as text for people, drawn as vector shapes so they print sharply.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import segno

from provisioning.errors import UsageError

MM = 72 / 25.4  # PDF points per millimetre
LABEL_W_MM, LABEL_H_MM = 62.0, 29.0  # a common thermal-label size


def payload(device_id: str, property_reference: str) -> str:
    """What the QR code says: compact JSON any phone or scanner app can read."""
    return json.dumps({"d": device_id, "p": property_reference}, separators=(",", ":"))


def write_label(path: Path, *, device_id: str, property_reference: str, room: str = "") -> Path:
    qr = segno.make(payload(device_id, property_reference), error="m", micro=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".png":
        qr.save(str(path), kind="png", scale=8, border=2)
    elif suffix == ".pdf":
        path.write_bytes(_pdf(qr, [device_id, property_reference, room]))
    else:
        raise UsageError(
            f"cannot write a label as {suffix or 'no extension'}", remedy="use .png or .pdf"
        )
    return path


def _win_ansi(text: str) -> bytes:
    """`text` in the font's WinAnsiEncoding (cp1252 is the same table): accents the table
    lacks are dropped (ő → o), and anything else it cannot show becomes "?"."""
    out = bytearray()
    for char in text:
        try:
            out += char.encode("cp1252")
        except UnicodeEncodeError:
            base = unicodedata.normalize("NFKD", char).encode("cp1252", "ignore")
            out += base if base.strip() else b"?"
    return bytes(out)


def _pdf_string(text: str) -> str:
    """A PDF literal string: ASCII as is, other bytes as octal escapes."""
    parts = []
    for byte in _win_ansi(text):
        char = chr(byte)
        if char in "\\()":
            parts.append("\\" + char)
        elif 32 <= byte < 127:
            parts.append(char)
        else:
            parts.append(f"\\{byte:03o}")
    return "(" + "".join(parts) + ")"


def _pdf(qr: segno.QRCode, lines: list[str]) -> bytes:
    width, height = LABEL_W_MM * MM, LABEL_H_MM * MM
    matrix = [list(row) for row in qr.matrix]
    size = height - 4 * MM
    module = size / (len(matrix) + 4)  # two modules of quiet zone on each side
    x0, y0 = 2 * MM + 2 * module, 2 * MM + 2 * module
    ops = ["0 g"]
    for r, row in enumerate(matrix):
        for c, dark in enumerate(row):
            if dark:
                x = x0 + c * module
                y = y0 + (len(matrix) - 1 - r) * module
                ops.append(f"{x:.2f} {y:.2f} {module:.2f} {module:.2f} re")
    ops.append("f")
    text_x = size + 4 * MM
    for i, line in enumerate(filter(None, lines)):
        font = 10 if i == 0 else 8
        y = height - (6 + i * 5) * MM
        ops.append(f"BT /F1 {font} Tf {text_x:.2f} {y:.2f} Td {_pdf_string(line)} Tj ET")
    content = "\n".join(ops).encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width:.2f} {height:.2f}] "
        "/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>".encode(),
        b"<< /Length " + str(len(content)).encode() + b" >>\nstream\n" + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)
