"""Text as a model would read it: the views the injection detector matches its rules on.

Whoever plants instructions in evidence wants a model to read them while a person or a
filter does not, so the detector first undoes the usual disguises:

- HTML entities (`&#105;gnore`, `&lt;/evidence&gt;`), decoded twice for double encoding;
- NFKC (fullwidth and mathematical letters, ligatures), then look-alike letters and
  delimiters from other scripts (`data/confusables.json`, a subset of Unicode's
  confusables.txt), accents stripped (so `précédentes` matches `precedentes`);
- invisible characters (zero-width spaces and joiners, soft hyphens, bidi controls, word
  joiners) removed; Unicode tag characters (U+E0020..E007E, invisible ASCII) read as the
  ASCII they stand for;
- letter-spacing and punctuation between letters (`i g n o r e`, `i.g.n.o.r.e`) in a
  compact view of letters only, also after leetspeak (`1gn0r3`), ROT13 and reversal;
- encoded payloads (base64, hex, percent-encoding, `\\x69` and `\\u0069` escapes) decoded
  into text of their own, which is scanned like any other.

Nothing here changes stored or quoted text: these views exist only to be matched.
"""

import base64
import binascii
import html
import json
import re
import unicodedata
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CONFUSABLES_FILE = Path(__file__).parent / "data" / "confusables.json"

_TAG_BLOCK = range(0xE0000, 0xE0080)
_KEEP_CONTROLS = {"\n", "\t", "\r"}
_ASCII_CONTROLS = {c: None for c in [*range(0x20), 0x7F] if chr(c) not in _KEEP_CONTROLS}
_HSPACE = re.compile(r"[^\S\n]++")
_LINE_BREAKS = re.compile(r" ?\n\s*+")  # after _HSPACE: tries start only at a space or a break
_NOT_LETTER = re.compile(r"[^a-z]+")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b",
                       "@": "a", "$": "s", "!": "i", "|": "l", "+": "t"})  # fmt: skip
_ROT13 = str.maketrans("abcdefghijklmnopqrstuvwxyz", "nopqrstuvwxyzabcdefghijklm")
# Possessive and anchored at the start of a run: no backtracking, linear in any text.
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{16,}+={0,2}")
_BASE64_LINES = re.compile(
    r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/=_-]{16,}+(?:[^\S\n]*+\n[^\S\n]*+[A-Za-z0-9+/=_-]{4,}+)++"
)
_HEX = re.compile(
    r"(?<![0-9A-Za-z])"
    r"(?:(?:[0-9A-Fa-f]{2}){10,}|(?:[0-9A-Fa-f]{2}[ :]){9,}[0-9A-Fa-f]{2})"
    r"(?![0-9A-Za-z])"
)
_ESCAPES = re.compile(r"(?:\\x[0-9A-Fa-f]{2}|\\u[0-9A-Fa-f]{4}){4,}")
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_ENCODED = re.compile(
    r"[A-Za-z0-9+/_-]{16}|(?:[0-9A-Fa-f]{2}[ :]){9}|\\[xu][0-9A-Fa-f]|%[0-9A-Fa-f]{2}"
)
MIN_DECODED_LETTERS = 8


@dataclass(frozen=True)
class Views:
    """One text, read the ways a model could read it."""

    cased: str  # normalised, case kept, lines kept
    folded: str  # the same, case-folded
    compact: tuple[tuple[str, str], ...]  # (how, letters only): plain, leet, rot13, reversed


@cache
def confusables() -> dict[int, str]:
    mapping: dict[str, str] = json.loads(CONFUSABLES_FILE.read_text())["map"]
    return {ord(char): ascii_text for char, ascii_text in mapping.items()}


@cache
def _invisible() -> dict[int, None]:
    """Format characters (zero-width, bidi, soft hyphen, tags), controls other than line
    breaks and tabs, private-use and unassigned code points: a table that deletes them."""
    hidden = ("Cf", "Cc", "Co", "Cn")
    return {
        code: None
        for code in range(0x110000)
        if not 0xD800 <= code <= 0xDFFF
        and chr(code) not in _KEEP_CONTROLS
        and unicodedata.category(chr(code)) in hidden
        and not 0x20000 <= code < 0xE0000  # the unassigned planes: nothing hides there
    }


@cache
def _marks() -> dict[int, None]:
    """Combining marks, deleted after NFD to strip accents."""
    return {code: None for code in range(0x300, 0x20000) if unicodedata.combining(chr(code))}


def strip_invisible(text: str) -> str:
    """The text without the characters that render as nothing (zero-width, bidi, tags)."""
    return text if text.isascii() else text.translate(_invisible())


def _tag_text(text: str) -> str:
    """ASCII smuggled in Unicode tag characters, which render as nothing."""
    return "".join(chr(ord(c) - 0xE0000) for c in text if ord(c) in _TAG_BLOCK)


def normalise(text: str) -> str:
    """Entities decoded, NFKC, look-alikes mapped, accents and invisible characters gone,
    white space collapsed (a line break kept as one: a role marker at a line's start
    matters)."""
    text = html.unescape(html.unescape(text)) if "&" in text else text
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text).translate(_invisible())
        text = unicodedata.normalize("NFD", text.translate(confusables())).translate(_marks())
        text = unicodedata.normalize("NFKC", text)
    else:
        text = text.translate(_ASCII_CONTROLS)
    # one space or one line break for any run of white space: no pattern meets long runs
    return _LINE_BREAKS.sub("\n", _HSPACE.sub(" ", text)).strip()


def _compact(text: str) -> str:
    return _NOT_LETTER.sub("", text)


def views(text: str) -> Views:
    cased = normalise(text)
    folded = cased.casefold()
    letters = _compact(folded)
    leet = folded.translate(_LEET)
    compact = [("compact", letters)]
    if leet != folded:  # digits or symbols that may stand for letters
        compact.append(("leet", _compact(leet)))
    # letters only, so ROT13 and reversal of the compact view are those of the text's
    compact += [("rot13", letters.translate(_ROT13)), ("reversed", letters[::-1])]
    return Views(cased, folded, tuple(compact))


def decoded_texts(text: str) -> list[tuple[str, str]]:
    """(encoding, decoded text) for every encoded stretch of `text` that decodes to
    readable text: the payloads a model could be asked to decode and obey."""
    found: list[tuple[str, str]] = []
    if not text.isascii():
        smuggled = _tag_text(text)
        if smuggled:
            found.append(("unicode_tags", smuggled))
    plain = html.unescape(html.unescape(unicodedata.normalize("NFKC", text)))
    if not _ENCODED.search(plain):  # the usual case: nothing that could be encoded text
        return found
    blocks = [re.sub(r"\s+", "", block) for block in _BASE64_LINES.findall(plain)]
    for token in _BASE64.findall(plain) + blocks:
        decoded = _base64(token)
        if decoded:
            found.append(("base64", decoded))
    for token in _HEX.findall(plain):
        decoded = _readable(_bytes_or_none(binascii.unhexlify, re.sub(r"[\s:]", "", token)))
        if decoded:
            found.append(("hex", decoded))
    for token in _ESCAPES.findall(plain):
        decoded = _readable(_bytes_or_none(_unescape_bytes, token))
        if decoded:
            found.append(("escapes", decoded))
    if len(_PERCENT.findall(plain)) >= 3:
        found.append(("percent", urllib.parse.unquote(plain)))
    return list(dict.fromkeys(found))


def _base64(token: str) -> str | None:
    padded = token + "=" * (-len(token) % 4)
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        text = _readable(_bytes_or_none(decode, padded))
        if text:
            return text
    return None


def _unescape_bytes(token: str) -> bytes:
    return token.encode("ascii").decode("unicode_escape").encode("utf-8")


def _bytes_or_none(decode: Callable[[str], bytes], token: str) -> bytes | None:
    try:
        return decode(token)
    except (ValueError, binascii.Error, UnicodeError):
        return None


def _readable(raw: bytes | None) -> str | None:
    """Decoded bytes as text, when they are text: UTF-8, printable, with letters."""
    if not raw:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    printable = sum(c.isprintable() or c in "\n\t" for c in text)
    letters = sum(c.isalpha() for c in text)
    if printable < 0.95 * len(text) or letters < MIN_DECODED_LETTERS or " " not in text.strip():
        return None
    return text
