"""PII detection and redaction: the detector behind the guardrails' PII rail and the training-data redactor.

Structured kinds pair a regex with a validity check (Luhn and issuer
ranges for cards, mod-97 for IBANs, IPv4 octet ranges, unassigned SSN areas) so that policy numbers, dates, amounts
and section numbers in HR prose stay; digit groups without a "+" or a North American shape are a phone only beside a
phone cue. Names come from two sources, merged: rules (honorifics, cues such as "Name:" or "my name is", a list of
common first names) and a learned token classifier (guardrails/pii_names.py: logistic regression over word shape,
affixes, context words and gazetteers, trained by guardrails/train_pii.py), which finds bare surnames and names
no list holds; with the real embedder, a head over MiniLM's per-token vectors (guardrails/pii_context.py) gives the
verdict for texts that tagger flags. presidio and spaCy NER models are not used: they would have to be downloaded at run time.
"""

import bisect
import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

from guardrails.pii_names import DEFAULT_MODEL as DEFAULT_NAME_MODEL
from guardrails.pii_context import GatedNameTagger, gated_tagger
from guardrails.pii_names import load_cached
from guardrails import pii_address

# Also the precedence when spans of two kinds overlap: checksummed kinds first, cue-based last.
KINDS = ("email", "iban", "card", "national_id", "ip", "phone", "address", "date_of_birth", "person")

# Common given names across regions; those that are also words or cities (will, may, grant, jordan, sofia) are left out.
_FIRST_NAMES = frozenset("""james john robert michael william david richard joseph thomas charles christopher daniel
matthew anthony steven paul andrew joshua kenneth kevin brian george timothy ronald edward jason jeffrey ryan jacob
gary nicholas eric jonathan stephen larry justin scott brandon benjamin samuel gregory alexander patrick raymond dennis
jerry tyler aaron henry adam douglas nathan peter zachary kyle walter harold jeremy ethan carl keith roger gerald terry
noah lawrence jesse joe bryan billy albert dylan bruce gabriel alan juan logan wayne ralph roy eugene randy vincent
russell louis philip bobby johnny bradley oliver harry oscar liam lucas mason elijah owen caleb isaac connor ian colin
simon neil stuart graham duncan alistair hamish mary patricia jennifer linda elizabeth barbara susan jessica sarah
karen lisa nancy betty margaret sandra ashley kimberly emily donna michelle carol amanda dorothy melissa deborah
stephanie rebecca sharon laura cynthia kathleen amy angela shirley anna brenda pamela emma nicole helen samantha
katherine christine debra rachel carolyn janet catherine maria heather diane ruth julie olivia joyce kelly lauren
christina joan evelyn judith megan andrea cheryl hannah jacqueline martha gloria teresa ann sara frances kathryn janice
jean abigail alice judy sophia denise doris marilyn danielle beverly isabella theresa diana natalie brittany marie
kayla alexis lori chloe zoe ella mia ava lily emilia sophie lucy lukas jonas leon felix maximilian elias finn luca
mateo hugo jules antoine pierre francois nicolas julien mathieu sebastien laurent thierry philippe benoit camille manon
amelie juliette margaux elodie marco giuseppe giovanni antonio francesco alessandro lorenzo matteo stefano luigi
roberto paolo gianni federico riccardo davide giulia chiara francesca alessia martina valentina elisa silvia paola
giorgia pablo javier alejandro carlos miguel jose manuel francisco diego sergio fernando rafael jorge ricardo eduardo
pedro joao tiago rui lucia camila isabel carmen pilar beatriz ana ines leonor mariana gabriela daniela fernanda adriana
luisa marisol guadalupe hans klaus jurgen wolfgang dieter stefan markus andreas matthias uwe sven lars anders erik
johan nils magnus henrik mikkel rasmus soren jens ole bjorn olaf kari ingrid astrid sigrid freya anja katrin sabine
ulrike birgit heike petra monika ursula greta elsa karin annika linnea maja ebba emil oskar axel viktor kristian morten
torben frederik mette hanne lene tove helga gudrun sindre eirik jukka mikko antti juha matti pekka timo sanna tiina
johanna aino ivan dmitri dmitry sergei sergey alexei alexey andrei mikhail nikolai vladimir boris yuri oleg pavel igor
anton tomas jakub piotr krzysztof marek tomasz pawel lukasz michal jiri petr zoltan laszlo istvan gabor attila bence
tamas janos agnes katalin zsofia eszter olga natalia tatiana svetlana irina ekaterina anastasia marta magdalena
katarzyna agnieszka joanna ewa zofia alena jana milena darko dragan nikola luka marko ivana beatrix vesna jelena bojan
goran zoran dusan mirela andreea ioana mihai bogdan radu mohammed muhammad mohamed ahmed ahmad ali omar hassan hussein
ibrahim yusuf youssef khalid karim tariq amir reza mehmet mustafa emre fatima aisha layla leila zainab maryam yasmin
noor amina samira idris hamza bilal farid nadia rania salma huda dina raj rahul amit arjun vikram sanjay anil sunil
ravi rohan priya ananya divya pooja deepa kavya neha anjali sunita lakshmi arun suresh ramesh vijay krishna lalitha
meera hiroshi takeshi kenji yuki haruto yuto sakura yui aiko akira kenta takashi satoshi naoko keiko yoko hiroko tomoko
asuka daisuke shota ryo minh thanh linh huong xiaoming jiawei kwame kofi kwesi chidi ngozi oluwaseun tunde amara thabo
sipho zanele themba nomvula clara eva nina lena lea julia anne claire tom tim ben sam dan nick alex chris matt mike
steve tony jim kate katie jenny beth ellie jake luke kim""".split())

_HONORIFICS = frozenset("mr mrs ms miss mx dr prof sir dame madam mme mlle herr frau sr sra".split())
_PARTICLES = frozenset("van von de der den da di du del della la le bin ibn al".split())
# Next to a name, these (or a house number) make it part of a place or company: "615 Hugo St", "Thomas and Sons".
_PLACE_WORDS = frozenset("""street st road rd avenue ave lane drive way boulevard blvd bypass court place square
parkway terrace crescent highway route plaza san santa sao saint fort port mount rua avenida calle rue via ul strasse
straße sons partners associates holdings investments consulting solutions systems inc ltd llc plc gmbh co corp
group""".split())
# Capitalised words that end a name: calendar words, role and document nouns.
_NOT_NAMES = _HONORIFICS | _PLACE_WORDS | frozenset("""team plan policy health university college hospital bank company
corporation department office center centre foundation monday tuesday wednesday thursday friday saturday sunday january
february march july september october november december employee employees manager customer member all and or the
of""".split())


@dataclass
class PiiSpan:
    kind: str
    start: int
    end: int
    text: str


@dataclass
class Redaction:
    text: str
    spans: list[PiiSpan]


class PiiRedactor:
    """Finds spans of the chosen kinds (all of KINDS by default) and masks them as "[KIND]"."""

    def __init__(self, kinds: Sequence[str] | None = None, name_model: Path | None = DEFAULT_NAME_MODEL,
                 encoder=None, names=None, known: Callable[[str], bool] | None = None) -> None:
        """`name_model`: the person-name tagger's weights (guardrails/train_pii.py), loaded once per process;
        None, or a missing file, leaves names to the rules. `encoder`: MiniLM word-piece vectors
        (guardrails.pii_context.PieceEncoder.from_embedder); given, names come from the contextual tagger behind
        the hashed one as a gate (guardrails/pii_context.py); None (the fake embedder) keeps the hashed tagger.
        `names`: a ready tagger (anything with `spans(text)`) used instead of `name_model` and `encoder`.
        `known`: whether a word is the corpus's own vocabulary (assistant/corpus_words.py); a tagged "name" made
        only of such words ("Contoso", "X-rays", "Officer") is not masked. The rules' names (after a title or a
        cue such as "contact") are masked regardless."""
        self._known = known
        wants_names = "person" in (KINDS if kinds is None else kinds)
        self._names = names if names is not None and wants_names else load_cached(name_model) if (
            names is None and name_model is not None and wants_names) else None
        if names is None and self._names is not None and encoder is not None:
            self._names = gated_tagger(self._names, encoder)
        chosen = KINDS if kinds is None else (kinds,) if isinstance(kinds, str) else tuple(kinds)
        if unknown := sorted(set(chosen) - set(KINDS)):
            raise ValueError(f"unknown PII kinds {unknown}; known: {', '.join(KINDS)}")
        self.kinds = tuple(k for k in KINDS if k in chosen)
        c = re.compile
        ext = r"(?: ?(?:x|ext\.?) ?\d{1,5})?"
        self._email = c(r"(?<![\w.%+-])[\w.%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}\b")
        self._iban = c(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,8}(?: ?[A-Z0-9]{1,4})?\b", re.I | re.A)
        self._card = c(r"(?<![\w-])(?:\d{12,19}|\d{4}([ -])\d{4}\1\d{4}\1\d{4}(?:\1\d{3})?"
                       r"|\d{4}([ -])\d{6}\2\d{4,5})(?![\w-])")
        self._ssn = c(r"(?<![\w-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\w-])")
        self._nino = c(r"\b(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b")
        # Other ID numbers (driver's licence, passport) have no shared shape: taken only after their label.
        self._id_cue = c(r"\b(?:driver'?s?\s+licen[cs]e|passport|national\s+(?:id|identity|insurance)|identity\s+card"
                         r"|id\s+card|social\s+security|ssn|tax\s+id|itin|nino)(?:\s+(?:number|no\.?|num|#))?"
                         r"(?:\s+(?:is|was))?\s*[:#]?\s*([A-Z0-9][A-Z0-9-]{4,19})\b", re.I)
        octet = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
        self._ipv4 = c(rf"(?<![\w.])(?:{octet}\.){{3}}{octet}(?!\w|\.\d)")
        self._ipv6 = c(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
        self._phone_strong = c(rf"(?<![\w+])\+(?:\d{{1,3}}|\(\d{{1,4}}\))(?:[ .-]?(?:\(\d{{1,4}}\)|\d{{1,6}})){{1,6}}{ext}(?!\d)"
                               rf"|(?<![\w+(-])(?:(?:00)?1[ .-]?)?(?:\(\d{{3}}\) ?|\d{{3}}[.-])\d{{3}}[.-]\d{{4}}{ext}(?![\w-])")
        self._phone_weak = c(r"(?<![\w+(./-])(?<!\d,)(?:\(?\d{2,5}\)?(?:[ .-]\d{2,8}){1,5}|\d{7,15})(?![\w/]|[.,-]\d)")
        self._phone_cue = c(r"phone|mobile|\bcell|\btel\b|\bfax|\bdesk|\bcall|\bdial|\bsms|\btext\b|whatsapp|messag"
                            r"|answering|\breach\b|extension|hotline|helpline|\bcontact\b|\bmy\s+number\b", re.I)
        self._phone_after = c(r"[\s,-]*\(?(?:office|fax|mobile|cell|home|work|desk|phone|tel)\b", re.I)
        # A number right after one of these labels is that label's number, not a phone.
        self._phone_veto = c(r"\b(?:policy|group|plan|claim|member|account|acct|invoice|order|case|ticket|ref"
                             r"|reference|serial|model|part|form|id|routing|tracking)\s*(?:number|no\.?|num|#)?\s*[:#]?\s*$", re.I)
        # Dates, times, amounts and numbered references that a phone or IPv4 pattern could also match.
        self._date = c(r"(?<![\w.-])(\d{1,4})([-/.])(\d{1,2})\2(\d{1,4})(?![\w-]|[./]\d)")
        self._not_pii = c(r"\b\d{1,2}:\d{2}(?::\d{2})?\b|[$€£¥]\s?\d[\d,.]*\d|(?<![\d,.])\d[\d,.]*\s?(?:USD|EUR|GBP|CHF|dollars"
                          r"|euros|pounds)\b|(?:\b(?:section|sec\.|clause|article|chapter|rule|step|item|page|version"
                          r"|ver\.|v|release|build|firmware|model|part)|§)\s*\d[\w.-]*", re.I)
        self._word = c(r"[^\W\d_]+(?:-[^\W\d_]+)*(?:['’](?!s\b)[^\W\d_]+)*")
        self._name_cue = c(r"(?:\bname(?:\s+is|\s*[:?])|\bnamed\s+(?:him|her|them)|\bsigned:)\s*$", re.I)
        self._before = c(r"(\d[\w/-]*|[^\W\d_]+)\.? $")  # the word just before a name, for _in_place_name
        self._after = c(r" (?:and |& )?(\d|[^\W\d_]+)")

    @property
    def name_tagger(self):
        """The person-name tagger in use (None: names from the rules only)."""
        return self._names

    @property
    def uses_name_model(self) -> bool:
        return self._names is not None

    @property
    def uses_context(self) -> bool:
        """Whether names come from the contextual tagger (MiniLM vectors), whose verdicts read the whole text."""
        return isinstance(self._names, GatedNameTagger)

    def find(self, text: str) -> list[PiiSpan]:
        """Non-overlapping spans sorted by start; on overlap the earlier kind in KINDS wins, then the earlier start."""
        guarded = self._not_pii_spans(text)
        candidates = [(rank, start, start - end, kind, end) for rank, kind in enumerate(self.kinds)
                      for start, end in getattr(self, f"_{kind}_spans")(text, guarded)]
        taken: list[tuple[int, int, str]] = []  # (start, end, kind): disjoint, sorted by start
        for _, start, _, kind, end in sorted(candidates):
            at = bisect.bisect(taken, (start,))
            if (not at or taken[at - 1][1] <= start) and (at == len(taken) or end <= taken[at][0]):
                taken.insert(at, (start, end, kind))
        return [PiiSpan(kind, start, end, text[start:end]) for start, end, kind in taken]

    def redact(self, text: str) -> Redaction:
        spans, out = self.find(text), text
        for span in reversed(spans):
            out = f"{out[:span.start]}[{span.kind.upper()}]{out[span.end:]}"
        return Redaction(out, spans)

    def _not_pii_spans(self, text: str) -> list[tuple[int, int]]:
        spans = [m.span() for m in self._not_pii.finditer(text)]
        for m in self._date.finditer(text):
            day_month = (int(m.group(4 if len(m.group(1)) == 4 else 1)), int(m.group(3)))  # year first or last
            if 1 <= min(day_month) <= 12 and max(day_month) <= 31:
                spans.append(m.span())
        return spans

    def _email_spans(self, text: str, guarded) -> Iterator[tuple[int, int]]:
        yield from (m.span() for m in self._email.finditer(text))

    def _iban_spans(self, text: str, guarded) -> Iterator[tuple[int, int]]:
        for m in self._iban.finditer(text):
            parts = m.group().split(" ")
            for n in range(len(parts), 0, -1):  # a spaced IBAN can run on into a following word: try it shorter
                code = "".join(parts[:n]).upper()
                if len(code) >= 15 and _mod97(code[4:] + code[:4]) == 1:
                    yield m.start(), m.start() + len(" ".join(parts[:n]))
                    break

    def _card_spans(self, text: str, guarded) -> Iterator[tuple[int, int]]:
        for m in self._card.finditer(text):
            digits = "".join(ch for ch in m.group() if ch.isdigit())
            # Issuers: 2-6 lead every network, 1800/2131 are old JCB, 0604 old Maestro; only Maestro has 12 digits.
            issuer = digits[0] in "23456" or digits[:4] in ("1800", "2131", "0604")
            if issuer and (len(digits) > 12 or digits[0] in "056") and len(set(digits)) > 1 and _luhn(digits):
                yield m.span()

    def _national_id_spans(self, text: str, guarded) -> Iterator[tuple[int, int]]:
        yield from (m.span() for m in self._ssn.finditer(text))
        yield from (m.span() for m in self._nino.finditer(text))
        yield from (m.span(1) for m in self._id_cue.finditer(text) if sum(ch.isdigit() for ch in m.group(1)) >= 4)

    def _ip_spans(self, text: str, guarded) -> Iterator[tuple[int, int]]:
        for m in self._ipv4.finditer(text):
            # Single-digit quads ("1.2.3.4") are outline or version numbers; loopback and 0.x addresses name no one.
            if (any(len(octet) > 1 for octet in m.group().split(".")) and not m.group().startswith(("127.", "0."))
                    and not _overlaps(*m.span(), guarded)):
                yield m.span()
        for m in self._ipv6.finditer(text):
            try:
                ipaddress.IPv6Address(m.group())
            except ValueError:
                continue
            if sum(1 for group in m.group().split(":") if group) >= 2:
                yield m.span()

    def _phone_spans(self, text: str, guarded) -> Iterator[tuple[int, int]]:
        for pattern, needs_cue, fewest in ((self._phone_strong, False, 8), (self._phone_weak, True, 7)):
            for m in pattern.finditer(text):
                start, end = m.span()
                digits = sum(ch.isdigit() for ch in m.group().split("x")[0])  # "x" also ends "ext."
                before = text[max(0, start - 40):start]
                # A national number with its trunk prefix ("0723 243 765", "(0745) 791310", "015-86834497") is a
                # phone without a cue: amounts, dates and reference numbers do not start with 0 and 9+ digits.
                trunk = m.group().lstrip("(").startswith("0") and not m.group().lstrip("(").startswith("00") \
                    and 9 <= digits <= 12 and len(set(ch for ch in m.group() if ch.isdigit())) > 2
                if (fewest <= digits <= 15 and not _overlaps(start, end, guarded) and not self._phone_veto.search(before)
                        and (not needs_cue or trunk or self._phone_cue.search(before)
                             or self._phone_after.match(text, end))):
                    yield start, end

    def _address_spans(self, text: str, guarded) -> Iterator[tuple[int, int]]:
        yield from pii_address.address_spans(text)  # street addresses and their blocks (guardrails/pii_address.py)

    def _date_of_birth_spans(self, text: str, guarded) -> Iterator[tuple[int, int]]:
        yield from pii_address.date_of_birth_spans(text)

    def _person_spans(self, text: str, guarded) -> Iterator[tuple[int, int]]:
        """The rules' names and the tagger's, overlapping ones merged. The tagger's are dropped beside a place
        or company word ("615 Hugo St", "Thomas and Sons") like the rules' and when every word is a calendar or
        role word ("Monday", "Team")."""
        spans = list(self._rule_person_spans(text))
        if self._names is not None:
            for start, end, _ in self._names.spans(text):
                words = [_fold(w) for w in self._word.findall(text, start, end)]
                if words and not all(w in _NOT_NAMES for w in words) and not self._in_place_name(text, start, end) \
                        and not (self._known is not None and all(map(self._known, words))):
                    spans.append((start, end))
        merged: list[list[int]] = []
        for start, end in sorted(spans):
            if merged and start < merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        yield from ((start, end) for start, end in merged)

    def _rule_person_spans(self, text: str) -> Iterator[tuple[int, int]]:
        found = list(self._word.finditer(text))
        words = [m.group() for m in found]
        gaps = [text[a.end():b.start()] for a, b in zip(found, found[1:])]  # gaps[k]: between words k and k+1
        i, cased = 0, text != text.lower()
        while i < len(words):
            folded, start = _fold(words[i]), found[i].start()
            titled = i > 0 and words[i - 1].lower() in _HONORIFICS and gaps[i - 1] in (" ", ". ")
            listed = folded.split("-")[0] in _FIRST_NAMES
            if not ((_capitalised(words[i]) or listed and not cased) and len(folded) > 1 and folded not in _NOT_NAMES and (
                    titled or listed or self._name_cue.search(text, max(0, start - 25), start))):
                i += 1
                continue
            j = i + 1  # following capitalised words on the same line: surnames, initials ("R."), particles
            while (j < len(words) and j - i < 4 and (gaps[j - 1] == " " or gaps[j - 1] == ". " and len(words[j - 1]) == 1)
                   and (_capitalised(words[j]) or words[j] in _PARTICLES) and _fold(words[j]) not in _NOT_NAMES):
                j += 1
            while words[j - 1] in _PARTICLES:
                j -= 1
            end = found[j - 1].end()
            end += len(words[j - 1]) == 1 and text[end:end + 1] == "."
            if titled or not self._in_place_name(text, start, end):
                yield start, end
            i = j

    def _in_place_name(self, text: str, start: int, end: int) -> bool:
        near = (self._before.search(text, max(0, start - 30), start), self._after.match(text, end))
        return any(m and (m.group(1)[0].isdigit() or _fold(m.group(1)) in _PLACE_WORDS) for m in near)


def _capitalised(word: str) -> bool:
    return word[0].isupper() and (len(word) == 1 or not word.isupper())


def _fold(word: str) -> str:  # lower case without accents: "Jürgen" meets "jurgen" in the list
    return "".join(ch for ch in unicodedata.normalize("NFKD", word.lower()) if not unicodedata.combining(ch))


def _overlaps(start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    return any(start < e and s < end for s, e in spans)


def _mod97(code: str) -> int:
    return int("".join(str(int(ch, 36)) for ch in code)) % 97


def _luhn(digits: str) -> bool:
    doubled = (int(ch) * (1 + i % 2) for i, ch in enumerate(reversed(digits)))
    return sum(d - 9 if d > 9 else d for d in doubled) % 10 == 0
