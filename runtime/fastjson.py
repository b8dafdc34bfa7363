"""JSON without importing json (hot path: see runtime/hotpath.py, which re-exports these as
json_loads, json_dumps, json_dumps_indent): the C scanner and encoder of _json, plus an indenting
writer for the small documents runc prints."""
import _json


class _Ctx:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float  # NaN, Infinity: as json.loads does
    memo = {}


_scan = _json.make_scanner(_Ctx())
_encode = _json.make_encoder(None, None, _json.encode_basestring_ascii, None, ":", ",", False, False, True)
_encode_utf8 = _json.make_encoder(None, None, _json.encode_basestring, None, ":", ",", False, False, True)
_WS = " \t\n\r"


def loads(text):
    """Parse a JSON document; ValueError when it is not one."""
    if isinstance(text, (bytes, bytearray)):
        text = text.decode()
    i = len(text) - len(text.lstrip(_WS))
    try:
        obj, end = _scan(text, i)
    except (StopIteration, SystemError):
        # _json raises json.decoder.JSONDecodeError only when json.decoder is already imported;
        # otherwise its error path fails with SystemError
        raise ValueError("not a JSON document") from None
    finally:
        _Ctx.memo.clear()
    if text[end:].strip(_WS):
        raise ValueError(f"extra data at {end}")
    return obj


def dumps(obj, ensure_ascii=True):
    """Compact JSON (no spaces) like json.dumps(separators=(",", ":")): ASCII-escaped, or with
    ensure_ascii=False, non-ASCII characters as they are (as Go's encoder)."""
    return "".join((_encode if ensure_ascii else _encode_utf8)(obj, 0))


def dumps_indent(obj, indent="  ", _level=0):
    """json.dumps(obj, indent=2) for dicts and lists of plain values."""
    if isinstance(obj, dict) and obj:
        pad = "\n" + indent * (_level + 1)
        items = [pad + _json.encode_basestring_ascii(str(k)) + ": " + dumps_indent(v, indent, _level + 1)
                 for k, v in obj.items()]
        return "{" + ",".join(items) + "\n" + indent * _level + "}"
    if isinstance(obj, list) and obj:
        pad = "\n" + indent * (_level + 1)
        items = [pad + dumps_indent(v, indent, _level + 1) for v in obj]
        return "[" + ",".join(items) + "\n" + indent * _level + "]"
    return dumps(obj)
