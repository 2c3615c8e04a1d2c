"""URIs as text, losslessly: a file name need not be UTF-8, but the database and the messages
hold text. Each byte that is not UTF-8 (a lone surrogate after PEP 383 decoding) becomes %XX,
and `%` itself becomes %25, so two different names never get the same text and the text
always leads back to the file. Names that are UTF-8 and hold no `%` are unchanged.
"""

import re

_ESCAPED = re.compile(r"%(25|[89A-F][0-9A-F])")


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def encode_uri(uri: str) -> str:
    """The stored text of a URI as the file system or a bucket gave it."""
    if "%" not in uri and not _has_surrogates(uri):
        return uri
    return "".join("%25" if char == "%"
                   else f"%{ord(char) - 0xDC00:02X}" if "\udc80" <= char <= "\udcff"
                   else char for char in uri)


def decode_uri(text: str) -> str:
    """The URI back from its stored text (the exact inverse of encode_uri)."""
    if "%" not in text:
        return text
    return _ESCAPED.sub(lambda match: "%" if match[1] == "25"
                        else chr(0xDC00 + int(match[1], 16)), text)
