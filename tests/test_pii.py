"""PiiRedactor: crafted positives and negatives per kind, redact() output, and recall on the shared PII set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finetune.pii import KINDS, PiiRedactor, PiiSpan, Redaction

PII_SET = Path(__file__).resolve().parents[2] / "shared/data/security/pii_synth_v2.dev.json"
# Gold entity types of that set mapped to redactor kinds (a driver's licence is a national ID here).
GOLD_KIND = {"EMAIL_ADDRESS": "email", "PHONE_NUMBER": "phone", "CREDIT_CARD": "card", "US_SSN": "national_id",
             "US_DRIVER_LICENSE": "national_id", "IBAN_CODE": "iban", "IP_ADDRESS": "ip", "PERSON": "person"}
STRUCTURED = ("email", "phone", "card", "national_id", "iban", "ip")


@pytest.fixture(scope="module")
def redactor() -> PiiRedactor:
    return PiiRedactor()


def found(redactor: PiiRedactor, text: str, kind: str) -> list[str]:
    return [s.text for s in redactor.find(text) if s.kind == kind]


@pytest.mark.parametrize("text, expected", [
    ("Write to jane.doe+hr@example.co.uk today.", ["jane.doe+hr@example.co.uk"]),
    ("You said your email is EwanDawson@dayrep.com. Is that correct?", ["EwanDawson@dayrep.com"]),
    ("Mention @benefits-team in the channel; user@localhost is not routable.", []),
])
def test_email(redactor, text, expected):
    assert found(redactor, text, "email") == expected


@pytest.mark.parametrize("text, expected", [
    ("Call +44 20 7946 0958 after nine.", ["+44 20 7946 0958"]),
    ("Desk: (602)272-9781\nFax: 463-612-6138x036", ["(602)272-9781", "463-612-6138x036"]),
    ("The hotline is 1-800-555-0142.", ["1-800-555-0142"]),
    ("Mobile: 0490 39 07 81", ["0490 39 07 81"]),
    ("28-64-66-98 office\n930.167.3943 fax", ["28-64-66-98", "930.167.3943"]),
    ("Can someone call me on 01.84.17.61.18?", ["01.84.17.61.18"]),
])
def test_phone_positive(redactor, text, expected):
    assert found(redactor, text, "phone") == expected


@pytest.mark.parametrize("text", [
    "See Section 4.2.1 and the table on page 12.",
    "Coverage starts on 2024-01-15 or 15.01.2024 at 09:30.",
    "The stipend is $1,500.00 a year (1.500,00 EUR).",
    "Policy No. 555-123-4567 covers the whole household.",
    "Group number: 0490 39 07 81.",
    "Employees accrue 20 days; 12 345 678 were claimed company-wide.",  # digit groups with no phone cue
    "Firmware 4.3.0 replaced build 4.2.1.7 in 2023.",
])
def test_phone_negative(redactor, text):
    assert found(redactor, text, "phone") == []


@pytest.mark.parametrize("text, expected", [
    ("Card 4111 1111 1111 1111 expires soon.", ["4111 1111 1111 1111"]),
    ("Amex 378282246310005 and Maestro 501864667909.", ["378282246310005", "501864667909"]),
    ("Dashes: 5555-5555-5555-4444.", ["5555-5555-5555-4444"]),
    ("Bad Luhn: 4111 1111 1111 1112 and 378282246310006.", []),
    ("Invoice 1234567812345678 and employee 7000000000000005.", []),  # Luhn fails / no issuer starts with 7
    ("All zeros 0000 0000 0000 0000.", []),
])
def test_card(redactor, text, expected):
    assert found(redactor, text, "card") == expected


@pytest.mark.parametrize("text, expected", [
    ("Here's my SSN: 054-28-6917", ["054-28-6917"]),
    ("SSN 123 45 6789 on file.", ["123 45 6789"]),
    ("Invalid areas and groups: 000-12-3456, 666-12-3456, 912-34-5678, 123-00-4567, 123-45-0000.", []),
    ("Mixed separators 123-45 6789 are not an SSN.", []),
    ("NI number AB 12 34 56 C and QQ123456C.", ["AB 12 34 56 C"]),
    ("Prefixes BG and GB are never issued: BG 12 34 56 C.", []),
    ("My driver's license number is F162823540116", ["F162823540116"]),
    ("Passport no. 533401372 was renewed.", ["533401372"]),
    ("My passport number is valid until 2030.", []),
])
def test_national_id(redactor, text, expected):
    assert found(redactor, text, "national_id") == expected


@pytest.mark.parametrize("text, expected", [
    ("Pay to GB82 WEST 1234 5698 7654 32 from today.", ["GB82 WEST 1234 5698 7654 32"]),
    ("Pay to GB82 WEST 1234 5698 7654 32 from this week.", ["GB82 WEST 1234 5698 7654 32"]),  # "from" is not a group
    ("DE89370400440532013000 and lower case gb42nawi04454264788619.",
     ["DE89370400440532013000", "gb42nawi04454264788619"]),
    ("Checksum off by one: GB82 WEST 1234 5698 7654 33.", []),
    ("Product code AB12CDEF34567890 ships in May.", []),
])
def test_iban(redactor, text, expected):
    assert found(redactor, text, "iban") == expected


@pytest.mark.parametrize("text, expected", [
    ("Blocked from 195.206.132.199 twice.", ["195.206.132.199"]),
    ("client_ip = ?|106.31.73.20|", ["106.31.73.20"]),
    ("IPv6 2001:db8::8a2e:370:7334 and 6e40:4041:c617:e898:c11:40d2:c669:2eb4.",
     ["2001:db8::8a2e:370:7334", "6e40:4041:c617:e898:c11:40d2:c669:2eb4"]),
    ("999.1.1.1 and 256.10.10.10 are not addresses.", []),
    ("Version 10.0.0.1, release 2.14.0.3 and clause 1.2.3.4 are numbering.", []),
    ("Loopback 127.0.0.1, meeting at 12:30:45, ratio 1:2:3.", []),
])
def test_ip(redactor, text, expected):
    assert found(redactor, text, "ip") == expected


@pytest.mark.parametrize("text, expected", [
    ("Mr. Kowalczyk flew to Oslo.", ["Kowalczyk"]),
    ("Name: Sieuwerd Heuver\nPhone: 0496 46 46 70", ["Sieuwerd Heuver"]),
    ("Maria Lopez and Clara R. Dickson approved it.", ["Maria Lopez", "Clara R. Dickson"]),
    ("Talk to Jürgen van der Berg first.", ["Jürgen van der Berg"]),
    ("She named him Timmie.", ["Timmie"]),
])
def test_person_positive(redactor, text, expected):
    assert found(redactor, text, "person") == expected


@pytest.mark.parametrize("text", [
    "Section 4.2 of the Employee Handbook covers Northwind Health Plus.",
    "Offices in San Francisco and St. Louis open on Monday.",
    "The parcel went to 615 Maria Street.",
    "Thomas and Sons is a supplier.",
    "Will you grant May leave in June?",
])
def test_person_negative(redactor, text):
    assert found(redactor, text, "person") == []


def test_hr_prose_keeps_policy_numbers():
    text = ("Section 4.2: employees accrue 1.5 days per month from 2024-01-01. The $1,500 stipend (policy number "
            "4512-889-1200, plan ID 88012345, version 2.3.1.4) is paid on 15.03.2024 at 09:30 under claim #800-555-1234.")
    assert PiiRedactor().find(text) == []


def test_redact_replaces_each_span_with_its_placeholder():
    text = "Ms. Novak (novak@example.com, +1-984-182-0190) pays with 4111111111111111 from 10.1.2.3."
    result = PiiRedactor().redact(text)
    assert isinstance(result, Redaction)
    assert result.text == "Ms. [PERSON] ([EMAIL], [PHONE]) pays with [CARD] from [IP]."
    assert [s.kind for s in result.spans] == ["person", "email", "phone", "card", "ip"]
    assert all(isinstance(s, PiiSpan) and text[s.start:s.end] == s.text for s in result.spans)


def test_redact_all_placeholders():
    text = ("SSN 054-28-6917, IBAN GB82 WEST 1234 5698 7654 32, phone 541-714-1388, mail a@b.io, "
            "card 4111 1111 1111 1111, host 41.173.96.26, Dr. Okafor.")
    assert PiiRedactor().redact(text).text == (
        "SSN [NATIONAL_ID], IBAN [IBAN], phone [PHONE], mail [EMAIL], card [CARD], host [IP], Dr. [PERSON].")


def test_spans_sorted_and_non_overlapping():
    text = "My SSN: 054-28-6917; call 541-714-1388; Name: Lisa Novak; mail lisa.novak@example.com"
    spans = PiiRedactor().find(text)
    assert [s.start for s in spans] == sorted(s.start for s in spans)
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:]))
    assert [s.kind for s in spans] == ["national_id", "phone", "person", "email"]


def test_no_pii_returns_text_unchanged():
    result = PiiRedactor().redact("Nothing to hide here.")
    assert result.text == "Nothing to hide here." and result.spans == []


def test_kinds_filter_and_unknown_kind():
    text = "Mail a@b.io or call +1-984-182-0190."
    assert [s.kind for s in PiiRedactor(kinds=["email"]).find(text)] == ["email"]
    assert PiiRedactor(kinds=[]).find(text) == []
    assert PiiRedactor().kinds == KINDS
    with pytest.raises(ValueError, match="shoe_size"):
        PiiRedactor(kinds=["email", "shoe_size"])


@pytest.mark.shared
def test_recall_on_shared_pii_set():
    if not PII_SET.exists():
        pytest.skip(f"{PII_SET} is absent (the shared data set lives beside the project, not in a user's clone)")
    redactor = PiiRedactor()
    gold, hit, predicted, correct = ({k: 0 for k in KINDS} for _ in range(4))
    for row in json.loads(PII_SET.read_text(encoding="utf-8")):
        spans = redactor.find(row["full_text"])
        labels = [(GOLD_KIND.get(g["entity_type"]), g["start_position"], g["end_position"]) for g in row["spans"]]
        for kind, start, end in labels:
            if kind:
                gold[kind] += 1
                hit[kind] += any(s.kind == kind and s.start < end and start < s.end for s in spans)
        for s in spans:
            predicted[s.kind] += 1
            correct[s.kind] += any(k == s.kind and s.start < e and b < s.end for k, b, e in labels)
    # Measured on this set (bench/pii_recall.py): recall and precision 1.000 for every structured kind.
    # 0.92 leaves room for one miss among the 14 IPs and 21 IBANs / national IDs, a few among the rest.
    recall = {k: hit[k] / gold[k] for k in STRUCTURED}
    precision = {k: correct[k] / predicted[k] for k in STRUCTURED}
    assert all(r >= 0.92 for r in recall.values()), recall
    assert all(p >= 0.92 for p in precision.values()), precision
    # Names: rules + the learned tagger (guardrails/pii_names.py), which trades some precision for recall; on all
    # rows (training templates included) measured recall 0.935, precision 0.894 (rules alone: 0.425 / 0.971).
    # Held-out numbers are in bench/pii_recall.py.
    assert hit["person"] / gold["person"] >= 0.85 and correct["person"] / predicted["person"] >= 0.85


ADDRESS_CASES = [
    ("Please send the card to 14 Crown Street, London NW1 6XJ.", "14 Crown Street"),
    ("Billing address: Sara Schwarz\n    28245 Puruntie 82 Apt. 595\n   LAPPEENRANTA", "Puruntie 82"),
    ("He lives on the north side of Rua Diadema 1903.", "Rua Diadema 1903"),
    ("Ship it to Apt. 4, 55 Elm Road, Springfield, IL 62704.", "55 Elm Road"),
    ("my address is 947 trg revolucije 17 apt. 858 begunje na gorenjskem slovenia.", "trg revolucije 17"),
    ("Return to PSC 3294, Box 9168\nAPO AA 61487 in case of an issue.", "APO AA 61487"),
]


@pytest.mark.parametrize("text,value", ADDRESS_CASES)
def test_street_addresses_are_masked(text, value):
    redacted = PiiRedactor(name_model=None).redact(text)
    assert value not in redacted.text and "[ADDRESS]" in redacted.text, redacted.text


@pytest.mark.parametrize("text", [
    "How do I kill a Python process on port 8080?", "Keep track of your claims: 4. Track the status online.",
    "Section 4 of the Northwind Standard plan covers 80 percent.", "I paid 25 euros twice on 03/07/2024.",
    "Which street address do I put on the W-4 form?", "During 1984, The Vanguard Group invested in 3 funds.",
    "Configure it with K2 Studio or the K2 Field app for Android and iOS.",  # a product code's digit is no house number
])
def test_benign_text_keeps_its_words(text):
    assert PiiRedactor(name_model=None, kinds=["address", "date_of_birth"]).redact(text).text == text


def test_date_of_birth_is_masked_and_other_dates_stay():
    redactor = PiiRedactor(name_model=None)
    assert redactor.redact("I was born on 4 May 1990; DOB: 1985-04-16.").text == \
        "I was born on [DATE_OF_BIRTH]; DOB: [DATE_OF_BIRTH]."
    assert redactor.redact("The claim was filed on 4 May 2024.").text == "The claim was filed on 4 May 2024."
