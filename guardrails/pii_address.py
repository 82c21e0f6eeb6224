"""Location-level personal data: street addresses (with their unit, city, postcode and country lines) and dates of
birth. Used by finetune.pii.PiiRedactor as the kinds `address` and `date_of_birth`, so the guardrails' PII rail
(messages, answers, stored text) and the fine-tuning data redactor mask them alike.

Hand-rolled rules: presidio and spaCy's NER would have to download models at run time, and libpostal (the
maintained address parser) needs a 2 GB data download. An address is found from its *core*, a street with a house
number in one of the world's common shapes, a unit ("Apt. 5", "Suite 200"), a post-office or military box, or a
house number and street after an address cue ("lives at", "my address is"); the span then grows over the
address block around it: the house number before it and the unit, city, state, postcode and country parts after
it (comma- or line-separated, or unit and postcode parts on the same line). A date of birth is a date after a
birth cue ("born on", "date of birth", "DOB"); other dates are not personal.
"""

from __future__ import annotations

import re
from typing import Iterator

# Street-type words that follow the name: English ones capitalised ("Crown Street", "Hoog St"; "keep track" is not
# a street), other languages' in any case ("Erzsébet tér", "Luite tee", "Kálmán Imre u.").
_ENGLISH_TYPES = """street st road rd avenue ave av lane ln drive dr boulevard blvd way court ct place pl square sq terrace
parkway pkwy highway hwy circle crescent close gardens row walk trail alley plaza heights grove mews quay wharf loop
cliffs islands creek ridge springs lodge hills greens pass isle flat flats estate estates manor meadow meadows orchard
pines shore shores summit valley village ville common commons corner corners cove crossing dale ferry field fields ford
forest forge freeway glen harbor harbour haven hollow inlet island knoll lake lakes landing mall mill mills motorway mount
mountain oval port prairie ranch rapid rapids route spur stream trace track turnpike vista junction mission station""".split()
_TYPE_AFTER = ("|".join(sorted({w.capitalize() for w in _ENGLISH_TYPES} | {w.upper() for w in _ENGLISH_TYPES}, key=len,
                               reverse=True))
               + r"|(?i:strasse|straße|tér|út|útja|utca|tee|kapu|u|iela|ulica|ulice|gata|gatan|vej|vegur|veien|vei|gade"
               r"|laan|straat|weg|gasse|platz|allee)")
# ... and those that come first ("Via Roma", "Rua do Arenque", "Rue de Virton", "ul. Narewska").
_TYPE_BEFORE = (r"via|viale|vicolo|piazza|piazzetta|largo|corso|rua|avenida|avda|av|calle|carrer|camino|paseo|plaza"
                r"|praça|praca|travessa|rue|avenue|boulevard|chemin|allée|allee|impasse|quai|place|ul|ulica|odos"
                r"|leoforos|πλατεία|οδός|λεωφόρος")
# Compound street names ("Puruntie", "Nybyvägen", "Rooseveltlaan", "Friedhofstrasse", "Skoanveien", "Harjukuja").
_COMPOUND = (r"katu|kuja|tie|polku|väylä|vägen|gatan|gränd|vej|gade|vænget|veien|vegur|gata|straat|laan|weg|gasse"
             r"|platz|allee|strasse|straße|damm|ufer|utca|ulica|iela|põik|puiestee|stræde|stien|brekka|vollen"
             r"|straeti|stígur")
_UPPER = "A-ZÀ-ÖØ-ÞĀ-ŽΑ-ΩА-Я"
_NAME = rf"(?:[{_UPPER}0-9][\w'’.-]*|(?:de|da|do|dos|das|del|della|di|du|la|le|von|van|der|des|z|u|v|am|an|the|of))"
_WORD = r"(?:[^\W\d_][\w'’.-]*)"  # any word (after a street type that comes first: "rue de pologne")
_NUM = r"\d{1,5}[A-Za-z]?\b\.?"
_UNIT = (r"(?:\b(?:(?i:apt|apartment|suite)|Ste|Unit|Flat|Fl)\b\.?\s*#?\s*\d{1,5}[A-Za-z]?\b"
         r"|(?i:\bP\.?\s?O\.?\s?Box\s+\d{1,6}\b|\bPSC\s+\d{1,5},?\s+Box\s+\d{1,5}\b|\bUnit\s+\d{1,5}\s+Box\s+\d{1,5}\b"
         r"|\b[ADF]PO\s+A[AEP]\s+\d{5}\b))")
_POSTCODE = r"(?:\b\d{4,6}\b|\b\d{3}\s\d{2}\b|\b[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}\b)"

_CORES = [
    # number? capitalised name words + street type + number?: "14 Crown Street", "Erzsébet tér 19.", "1659 Hoog St"
    re.compile(rf"(?:\b\d{{1,6}}[A-Za-z]?[ \t]+)?(?:{_NAME}[ \t]+){{0,3}}(?:[{_UPPER}][\w'’.-]*|\d+(?:st|nd|rd|th))[ \t]+(?:{_TYPE_AFTER})\b"
               rf"\.?(?:[ \t]+{_NUM})?"),
    # street type first + up to 5 words + number: "Via Franscini 71", "Rua do Arenque 1634", "Avda. Rio Nalon 58"
    re.compile(rf"\b(?i:{_TYPE_BEFORE})\b\.?\s+(?:{_WORD}\s+){{0,5}}{_NUM}"),
    # number + street type first + words: "29 Rue de Tanger", "36 rue de pologne", "33 avenue de Provence"
    re.compile(rf"\b\d{{1,5}}[A-Za-z]?,?\s+(?i:{_TYPE_BEFORE})\b\.?(?:\s+{_WORD}){{1,4}}"),
    # compound street name + number: "Puruntie 82", "Nybyvägen 65", "Friedhofstrasse 33"
    re.compile(rf"\b(?:{_NAME}\s+)?[{_UPPER}][^\W\d_]*(?i:{_COMPOUND})\s+{_NUM}"),
    # house number + capitalised words + number, the European shape after a leading number: "4923 Parmova 109"
    re.compile(rf"\b\d{{2,6}}\s+(?:[{_UPPER}][\w'’.-]*\s+){{1,3}}\d{{1,5}}[A-Za-z]?\b"),
    re.compile(_UNIT),
]
# After an address cue, a capitalised name + number ("Allika 46") or number + name ("90 Whitchurch Road") is a street.
_CUE = re.compile(r"(?i:\blives?\s+(?:at|on|in)|\baddress(?:es)?\b[^.\n]{0,30}?(?:is|:|are:?)|\barrived\s+at|\blocated\s+at"
                  r"|\bmoved\s+to|\bsend\s+(?:it|this|them)\s+to|\bship(?:ped)?\s+to|\bdeliver(?:ed)?\s+to|\bmeet\s+me\s+at"
                  r"|\bis\s+at|\bis\s+on|\bon\s+the\s+\w+\s+side\s+of|\bdrops?\s+you\s+off\s+at|\bsent\s+to|\breturn\s+(?:it\s+)?to"
                  r"|\bupdate\s+(?:it\s+)?to|\baddress:|\benter\s+on)\s*")
# After a cue, a block that starts with a house number runs to the clause's end, whatever its case ("address: 947 trg
# revolucije 17 apt. 858 begunje na gorenjskem slovenia"): people type addresses in lower case too.
_CUED_BLOCK = re.compile(r"\d{1,6}(?:[ \t]+\d{1,6})?[ \t]+[^\W\d_][^.?!;\n]{2,80}?(?=[.?!;]\s|[.?!;]?$|\n\s*\n|\s+(?:in case|last|and then|but|it|for|if)\b)",
                         re.M)
_CORNER = re.compile(rf"(?i:\bcorner\s+of)\s+([^\n.?!]{{3,60}}?\s+and\s+[{_UPPER}][\w'’.-]*(?:[ \t]+[{_UPPER}][\w'’.-]*){{0,2}})")
_CUED = re.compile(rf"(?:\d{{1,6}}\s+)?(?:{_NAME}\s+){{0,3}}[{_UPPER}][\w'’.-]*\s+\d{{1,5}}\b"
                   rf"|\d{{1,6}}\s+(?:[{_UPPER}][\w'’.-]*[ \t]*){{1,4}}")
# Parts that continue an address block after a separator.
_SEP_STRONG = re.compile(r"(?:\s*,\s*|[ \t]*\n[\s>?|*-]*)")
_SEP_SPACE = re.compile(r"[ \t]+")
_PART_NAME = re.compile(rf"[{_UPPER}][\w'’.()-]*(?:[ \t]+(?:{_NAME}|\(.*?\))){{0,4}}(?:[ \t]+{_POSTCODE})?")
_PART_SHORT = re.compile(rf"{_UNIT}|{_POSTCODE}|\b[A-Z]{{2,3}}\b(?:[ \t]+{_POSTCODE})?"
                         rf"|\b[{_UPPER}]{{3,}}(?:[ \t]+[{_UPPER}]{{3,}})*\b")
_NUMBER_BEFORE = re.compile(r"(?:\b\d{1,6}[ \t]+){1,2}$")
MAX_PARTS = 6  # unit, city, region, country, postcode... an address block has no more

_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
          r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_DATE = (rf"(?:\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH},?\s+\d{{4}}|{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"
         r"|\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4})")
_DOB = re.compile(rf"(?i:\b(?:born(?:\s+on)?|date\s+of\s+birth|birth\s*date|birthday|d\.?o\.?b\.?)\b\s*(?:is|was|:|-)?\s*"
                  rf"(?:on\s+)?({_DATE}))")


def address_spans(text: str) -> list[tuple[int, int]]:
    """Disjoint (start, end) spans of address blocks, sorted."""
    found = [m.span() for pattern in _CORES for m in pattern.finditer(text) if _plausible(m.group())]
    for cue in _CUE.finditer(text):
        m = _CUED.match(text, cue.end()) or _CUED_BLOCK.match(text, cue.end())
        if m:
            found.append((m.start(), m.end()))
    found += [m.span(1) for m in _CORNER.finditer(text)]
    blocks = [_grow(text, start, end) for start, end in found]
    merged: list[list[int]] = []
    for start, end in sorted(blocks):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


_NUMBER_START = re.compile(r"\b\d")  # a digit no letter leads into: "14", "4th", "12B", not "K2"


def _plausible(core: str) -> bool:
    """A core needs a number (house number or unit) and a capital: "a section 4" is not a street, and neither is a
    product code's digit ("the K2 Field app" is an app, not 2 Field)."""
    return bool(_NUMBER_START.search(core)) and any(ch.isupper() for ch in core)


def _grow(text: str, start: int, end: int) -> tuple[int, int]:
    before = _NUMBER_BEFORE.search(text, max(0, start - 16), start)
    if before:
        start = before.start()
    for _ in range(MAX_PARTS):
        for sep, part in ((_SEP_STRONG, _PART_NAME), (_SEP_STRONG, _PART_SHORT), (_SEP_SPACE, _PART_SHORT)):
            s = sep.match(text, end)
            p = part.match(text, s.end()) if s and s.end() > end else None
            if p and p.end() > p.start():
                end = p.end()
                break
        else:
            break
    return start, _trim(text, start, end)


def _trim(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1] in " \t\n,.>":
        end -= 1
    return end


def date_of_birth_spans(text: str) -> Iterator[tuple[int, int]]:
    """The date after a birth cue ("born on 4 May 1990", "DOB: 1990-05-04")."""
    yield from (m.span(1) for m in _DOB.finditer(text))
