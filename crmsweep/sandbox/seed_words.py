"""The words the seeded Salesforce org (and the HubSpot portal) is made of: names, places, companies."""

from __future__ import annotations

import unicodedata

FIRST_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "José", "María", "Zoë", "Łukasz", "Søren", "Chloé", "Björn", "Ana", "Mohammed", "Fatima", "Hiroshi",
    "Yuki", "Priya", "Arjun", "Olga", "Dmitri", "Siobhán", "Seán", "Nadia", "Kwame", "Amara", "Chen",
    "Wei", "Giulia", "Matteo", "Noah", "Emma", "Liam", "Olivia", "Ava",
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Müller", "Nowak", "Kowalski", "O'Brien", "Nguyen", "Kim", "Tanaka", "Sato", "Patel", "Singh", "Ivanova",
    "Dubois", "Rossi", "Andersson", "Hansen", "Fernández", "da Silva", "van der Berg", "Okafor", "Mensah",
    "Schmidt", "Lefèvre", "Zhang", "Wang", "Cohen", "Murphy", "Walsh", "Novák", "Horváth", "Öztürk",
)
# Bounce replies as receiving servers word them, which the seeded org keeps in EmailBouncedReason. Hard: the
# address is bad (RFC 3463 5.1.x, or a plain "no such user"). Soft: the mailbox or the message was refused, or
# delivery was put off (a full mailbox, spam, a 4xx deferral): the address is good, and no cleanup may clear it.
# The random bounces draw from the first two; the planted ones name their own.
HARD_BOUNCES = ("550 5.1.1 mailbox does not exist", "550 5.1.1 <{email}>: Recipient address rejected: User unknown")
SOFT_BOUNCES = ("552 5.2.2 mailbox full", "554 5.7.1 message rejected as spam")
PLANTED_HARD_BOUNCES = ("550 No such user here",)
PLANTED_SOFT_BOUNCES = ("452 4.2.2 Mailbox over quota", "421 4.7.0 Temporarily deferred",
                        "450 4.2.0 Greylisted, please retry later")
# Whole names written family-name-first, stored as LastName only (FirstName is null), as many orgs have.
SINGLE_NAMES = ("李娜", "王伟", "佐藤花子", "김민준")
ASCII_FOR = {"李娜": "li.na", "王伟": "wang.wei", "佐藤花子": "sato.hanako", "김민준": "kim.minjun"}
CITIES = (
    ("San Francisco", "CA", "United States"), ("New York", "NY", "United States"), ("Austin", "TX", "United States"),
    ("Chicago", "IL", "United States"), ("Toronto", "ON", "Canada"), ("London", None, "United Kingdom"),
    ("Berlin", None, "Germany"), ("München", "BY", "Germany"), ("Paris", None, "France"), ("Kraków", None, "Poland"),
    ("São Paulo", "SP", "Brazil"), ("Tokyo", None, "Japan"), ("Sydney", "NSW", "Australia"),
    ("Zürich", "ZH", "Switzerland"), ("Dublin", None, "Ireland"), ("Bangalore", "KA", "India"),
)
COMPANY_WORDS = (
    "Northwind", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Acme", "Vandelay", "Hooli", "Soylent",
    "Cyberdyne", "Tyrell", "Wonka", "Gringotts", "Aperture", "Blue Sun", "Oceanic", "Monarch", "Nakatomi", "Dunder",
)
COMPANY_SUFFIXES = ("Inc.", "LLC", "GmbH", "Ltd", "S.A.", "Corp.", "& Co.", "Sp. z o.o.", "AG", "Holdings")
PROBABILITY = {"Prospecting": 10.0, "Qualification": 20.0, "Proposal/Price Quote": 60.0,
               "Negotiation/Review": 80.0, "Closed Won": 100.0, "Closed Lost": 0.0}
# Each stage's default forecast category, as a new org's OpportunityStage rows give it.
FORECAST_CATEGORY = {"Prospecting": "Pipeline", "Qualification": "Pipeline", "Proposal/Price Quote": "Pipeline",
                     "Negotiation/Review": "Pipeline", "Closed Won": "Closed", "Closed Lost": "Omitted"}


def email_for(first: str | None, last: str, domain: str) -> str:
    local = ASCII_FOR.get(last) or ".".join(p for p in (first, last) if p)
    folded = unicodedata.normalize("NFKD", local).encode("ascii", "ignore").decode()
    folded = "".join(ch for ch in folded.lower().replace(" ", "") if ch.isalnum() or ch in ".-_")
    return f"{folded or 'contact'}@{domain}"
