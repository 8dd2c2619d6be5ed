"""`gate decode`: QR codes in image files, with the gate's own decoder."""

import argparse
import json
from typing import Any

from gate.decode import DecoderConfig, decode_files, make_decoder


def add_decode_command(commands: Any) -> None:
    decode = commands.add_parser(
        "decode",
        help="decode QR codes in image files",
        description=(
            'Print one JSON object per file: {"file", "codes": [{"text", "data_hex", '
            '"backend"}]} or {"file", "error"}; carries on after an unreadable file.'
        ),
    )
    decode.add_argument("files", nargs="+", metavar="FILE")
    decode.add_argument("--backend", choices=["auto", "zxing", "zbar"], default="auto")
    decode.set_defaults(handler=_decode)


def _decode(args: argparse.Namespace) -> int:
    decoder = make_decoder(DecoderConfig(backend=args.backend))
    failed = False
    for result in decode_files(args.files, decoder):
        failed |= "error" in result
        print(json.dumps(result, ensure_ascii=False), flush=True)
    return 1 if failed else 0
