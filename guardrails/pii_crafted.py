"""Crafted training sentences for the person-name tagger: templates written for this project, filled by Faker.

The labelled dev set has few sentence shapes, so a tagger trained on it alone learns its contexts rather than
what a name looks like. These templates put names in many other places (chat, e-mail headers and signatures,
HR forms, news, lists) and fill them with names of many locales; negative templates put capitalised words
that are not names (cities, companies, streets that are named after people, headings, product names) where
a name could stand. About one sentence in ten is lower-cased, as chat messages often are. Values come from
Faker with a fixed seed, so the data is the same on every run.
"""

from __future__ import annotations

import random
import re

# Latin-script locales: the tagger's shape and gazetteer features are about Latin-script text.
LOCALES = ("en_US", "en_GB", "en_IE", "en_IN", "de_DE", "de_AT", "fr_FR", "it_IT", "es_ES", "es_MX", "pt_BR",
           "pt_PT", "nl_NL", "da_DK", "sv_SE", "no_NO", "fi_FI", "is_IS", "pl_PL", "cs_CZ", "sk_SK", "hu_HU",
           "sl_SI", "hr_HR", "ro_RO", "tr_TR", "lt_LT", "lv_LV", "et_EE", "vi_VN", "id_ID", "fil_PH", "zu_ZA",
           "yo_NG", "sw", "az_AZ", "uz_UZ", "ga_IE")
HONORIFICS = ("Mr.", "Mrs.", "Ms.", "Dr.", "Prof.", "Mr", "Ms", "Dr", "Miss", "Sir")
POSITIVE = """Please forward this to {P} in accounting.
{P} will cover my shifts while I am on leave.
I spoke with {P} yesterday and the claim was approved.
Can you add {P} as a dependent on my plan?
My manager {P} approved the request on {WEEKDAY}.
Hi {P}, thanks for getting back to me.
Dear {P},\\n\\nYour application has been received.
Best regards,\\n{P}\\n{JOB}\\n{COMPANY}
{P} ({JOB}) joined the team in {MONTH}.
The report was written by {P} and reviewed by {P2}.
Attendees: {P}, {P2} and {P3}.
Is {P} still working at {COMPANY}?
Send the contract to {P} at our {CITY} office.
{P} was born in {CITY}, {COUNTRY}.
According to {P}, the results were better than expected.
Contact person: {P}
Employee: {P}\\nDepartment: Finance\\nStart date: {MONTH} 3
Patient {P} was admitted on {WEEKDAY} with chest pain.
The account holder is {P}.
I am writing on behalf of my mother, {P}.
{P} said the order would ship by {WEEKDAY}.
Who is {P}?
Tell {P} that the package arrived.
My wife {P} also needs a new card.
The award went to {P} for the work on the {CITY} project.
{P}'s laptop is broken, so send the file by email.
Thanks to {P} and {P2} for organising the event.
Interview with {P}, the new {JOB} at {COMPANY}.
The novel by {P} was translated into twelve languages.
Played by {P}, the character became famous.
I'd like to book a table for two under the name {P}.
Passenger: {P}   Seat: 14C
Signed, {P}
From: {P}\\nTo: {P2}\\nSubject: Leave request
cc: {P}; {P2}
{P} and I are flying to {CITY} next week.
Do you know if {P} has submitted the form?
We hired {P} as a {JOB} last year.
This is {P} from {COMPANY}, returning your call.
I'm {P}, nice to meet you.
Reviewer: {P}
{P} reported the incident to HR on {WEEKDAY}.
The song was recorded by {P} in {CITY}.
Ask {P} about the budget before {MONTH}.
{P} is out of office until {MONTH}.
Beneficiary: {P} (spouse)
The card is in the name of {P}.
{P}, {P2}, {P3}
Last week {P} visited {COUNTRY} with family.
Happy birthday {P}!
Congratulations to {P} on twenty years with {COMPANY}.
Our speaker today is {P}, {JOB} at {COMPANY}.
The painting was sold by {P} to a collector from {CITY}.
Please update the address for {P}.
Why was {P} charged twice?
{P} wants to know when the refund arrives.
Photo: {P} for {COMPANY}
Guardian name: {P}
The film stars {P} and {P2}.
Can {P} pick up the documents instead of me?
Order placed by {P} on {WEEKDAY}.
We sent the invoice to {P} but got no answer.
{P} lives in {CITY} and works as a {JOB}.
Candidate {P} accepted the offer.
The claim for {P} was denied.
{P}: Where were you last night?\\n{P2}: At home, why?
{P}: thanks, see you tomorrow
Remember me, {P}?
Sorry, {P}, I can't make it today.
We invited five people: {P}, {P2}, {P3}, {P4} and {P5}.
Thanks {P}!
Good morning {P}, how are you?
Is this {P}'s desk?
{P} shouted at {P2} and left the room.
Unlike {P}, I prefer tea.
Their children are {P}, {P2} and {P3}.
Ok {P}, I will check with {P2}.""".split("\n")
NEGATIVE = """The {COMPANY} office in {CITY} is closed on {WEEKDAY}.
We moved from {CITY} to {COUNTRY} in {MONTH}.
Our headquarters are at {STREET}, {CITY}.
{COMPANY} announced a new plan for {COUNTRY}.
The {JOB} role reports to the Head of Operations.
See the Employee Handbook, Section 4, for the Paid Time Off rules.
The Annual Leave Policy applies to all Full-Time Employees.
Flights to {CITY} leave every {WEEKDAY} morning.
The Gold Health Plus plan covers Preventive Care and Emergency Services.
Welcome to {CITY}! Visit the Old Town and the National Museum.
Customer Service is open Monday to Friday.
I work for {COMPANY}.
The conference will be held in {CITY}, {COUNTRY}.
Deliveries to {STREET} are delayed.
Please Note: All Requests Must Be Approved By Your Manager.
How do I reset my Online Banking password?
Is Apple Pay supported for my Visa card?
What is the exchange rate from Euro to US Dollar?
Chapter 3: Benefits Overview
The {CITY} branch of {COMPANY} hires a {JOB}.
Trains from {CITY} to {CITY2} run every hour.
My top-up from {COUNTRY} failed again.
The Board of Directors met in {CITY} on {WEEKDAY}.
Open Enrollment starts in {MONTH} and ends in December.
The {COMPANY} app crashed after the Android update.
Send the parcel to {STREET}, {CITY}, {COUNTRY}.
Why is my Mastercard declined in {COUNTRY}?
Dental, Vision and Life Insurance are included.
Quarterly Business Review - {COMPANY}
The Tax Office in {CITY} needs Form W-2.
Hello, I moved and need to update my details.
Cool, thanks for the quick answer!
A quick question about my card.
An error appeared when I tried to pay.
Great, that works for me.
Sure, go ahead.
Wow, that was fast!
Okay, what happens next?
No, I never authorised that payment.
Anyway, the transfer still says Pending.
Honestly I don't know what happened.
Three... two... one... go!
Rock and roll never dies.
Happy New Year to the whole team!
Morning! Is the office open today?
Please advise.
Where Can I Find The Form?
Liftoff was delayed by an hour.
Fine. Send it again.
Will I be charged a fee for this?
Will the refund show up today?
May I change my PIN online?
Can I pay with Google Pay in {COUNTRY}?
Cash withdrawals from the ATM failed twice.
Prior approval is needed for imaging services.
Allergy testing is covered once a year.
Out-of-network providers may bill you for the balance.
Double-check your details before you submit.
Hunter green and Rose pink are this season's colours.
Grant applications close in {MONTH}.
Frank feedback helps the team improve.
Does the {BRAND} Standard plan cover dental care?
The {BRAND} Health Plus plan has a lower deductible.
Company: {BRAND} Electronics
{BRAND} Electronics offers a gym stipend through {BRAND2}Plus.
Under {BRAND} Standard, generic drugs cost less.
Job Title: Senior Manager, {BRAND} Systems
Next Steps
Covered Services: Acupuncture and Chiropractic Care
Medicare Part A and Part B are separate programs.
ERISA and the Affordable Care Act set the rules.""".split("\n")


def crafted(seed: int = 0, per_template: int = 30) -> list[dict]:
    """Rows like the dev set's: {"full_text", "spans": [{entity_type, start_position, end_position}]}."""
    from faker import Faker

    rng = random.Random(seed)
    fakers = []
    for locale in LOCALES:
        fake = Faker(locale)
        fake.seed_instance(seed)
        fakers.append(fake)
    rows = []
    for template in POSITIVE + NEGATIVE:
        for _ in range(per_template):
            rows.append(_fill(template.replace("\\n", "\n"), rng, rng.choice(fakers), rng))
    english = fakers[0]
    # Sentences of frequent English words: capitalised first words that are not names; a third title-cased,
    # like headings and product names.
    for k in range(10 * per_template):
        sentence = english.sentence(nb_words=rng.randint(3, 14))
        rows.append({"full_text": sentence.title() if k % 3 == 0 else sentence, "spans": [], "crafted": True})
    return rows


def _brand(rng: random.Random) -> str:
    """A made-up product or company word ("Zentrova"): capitalised, in no word list, and no name."""
    syllables = ["zen", "tro", "va", "quil", "lex", "nor", "thi", "con", "tos", "fab", "ri", "kam", "wel", "dex",
                 "sol", "ara", "vio", "mek", "plu", "tan", "or", "is", "ex", "ly", "ko"]
    return "".join(rng.choice(syllables) for _ in range(rng.randint(2, 3))).capitalize()


def _name(fake, rng: random.Random) -> tuple[str, str]:
    """(prefix outside the span, the name): full names, initials, one part only, after an honorific."""
    first, last, middle = fake.first_name(), fake.last_name(), fake.first_name()[0]
    form = rng.random()
    if form < 0.35:
        return "", f"{first} {last}"
    if form < 0.45:
        return "", f"{first} {middle}{rng.choice(['. ', ' '])}{last}"
    if form < 0.6:
        return "", first
    if form < 0.72:
        return "", last
    return rng.choice(HONORIFICS) + " ", rng.choice([last, f"{first} {last}"])


def _fill(template: str, rng: random.Random, fake, rng2: random.Random) -> dict:
    values = {"CITY": fake.city, "CITY2": fake.city, "COUNTRY": fake.country, "COMPANY": fake.company,
              "STREET": fake.street_address, "JOB": fake.job, "BRAND": lambda: _brand(rng), "BRAND2": lambda: _brand(rng), "WEEKDAY": fake.day_of_week, "MONTH": fake.month_name}
    out, spans, last = [], [], 0
    lower = rng.random() < 0.1
    for m in re.finditer(r"\{(\w+)\}", template):
        out.append(template[last:m.start()])
        key = m.group(1)
        if key.startswith("P"):
            prefix, name = _name(fake, rng2)
            if template[:m.start()].rstrip().endswith(("Dear", "Hi", "Mr", "Dr")):
                prefix = ""
            out.append(prefix)
            start = sum(map(len, out))
            out.append(name)
            spans.append({"entity_type": "PERSON", "start_position": start, "end_position": start + len(name)})
        else:
            out.append(str(values[key]()))
        last = m.end()
    out.append(template[last:])
    text = "".join(out)
    if lower and len(text.lower()) == len(text):  # a few letters grow when lower-cased ("İ"): offsets would move
        text = text.lower()
    return {"full_text": text, "spans": spans, "crafted": True}
