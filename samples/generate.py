#!/usr/bin/env python3
"""Writes the bundled sample account "Example Corp" as five monthly sandbox states.

Stdlib only and deterministic: every random choice comes from ``random.Random`` seeded with a
fixed string, and no wall clock is read, so two runs write byte-identical files. The states are
in the ``certcentral-sandbox-dataset/1`` format (ARCHITECTURE.md, "Sandbox dataset format").

    python samples/generate.py            # (re)write samples/example-corp/states/*.json
    python samples/generate.py --check    # exit 1 if the committed states differ from a fresh run
    python samples/generate.py --summary  # who triggers which rule in which month (pci-dss-4)

The account is a population of ordinary users (generated) plus hand-placed users that make every
rule fire somewhere in the history; samples/README.md lists the hand-placed ones. Each person's
sign-ins come from a random generator seeded with that person's id, so editing one person does
not reshuffle everybody else.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

SEED = "certcentral-auditor/example-corp/v1"
HERE = Path(__file__).resolve().parent
ACCOUNT_DIR = HERE / "example-corp"
STATES_DIR = ACCOUNT_DIR / "states"

FORMAT = "certcentral-sandbox-dataset/1"
ACCOUNT_ID = 1696530
ACCOUNT = {"id": ACCOUNT_ID, "name": "Example Corp", "instance": "us"}

STATE_DATES = (date(2026, 7, 1), date(2026, 8, 1), date(2026, 9, 1), date(2026, 10, 1), date(2026, 11, 1))
JUL, AUG, SEP, OCT, NOV = range(len(STATE_DATES))
#: Sign-in history starts well before the first state, and runs past the last one so that every
#: state date falls inside an ordinary user's rhythm of sign-ins.
HISTORY_START = date(2026, 1, 5)
HISTORY_END = date(2026, 11, 30)

# --- roles and divisions (certcentral-api.md §4.1, §4.5) -------------------------------------------

ROLE_NAMES = {1: "Administrator", 2: "Limited User", 3: "Finance Manager", 4: "Manager", 5: "Standard User"}
ADMIN, LIMITED, FINANCE_MANAGER, MANAGER, STANDARD = 1, 2, 3, 4, 5
#: A sub-role the API may or may not expose (§4.1, UNCERTAIN): clients must pass it through.
EV_VERIFIED_USER = {"id": 99, "name": "EV Verified User"}


def roles(*ids: int) -> list[dict[str, Any]]:
    return [{"id": role_id, "name": ROLE_NAMES[role_id]} for role_id in ids]


ROOT, ENGINEERING, PLATFORM_SECURITY, SALES_EMEA, FINANCE, MARKETING, CONTRACTORS = (
    634763, 634801, 634802, 634810, 634820, 634830, 634840,
)
#: (id, name, parent_id, template_id). Platform Security sits under Engineering to give depth.
CONTAINERS = (
    (ROOT, "Example Corp", 0, 5),
    (ENGINEERING, "Engineering", ROOT, 6),
    (PLATFORM_SECURITY, "Platform Security", ENGINEERING, 6),
    (SALES_EMEA, "Sales EMEA", ROOT, 6),
    (FINANCE, "Finance", ROOT, 6),
    (MARKETING, "Marketing", ROOT, 6),
    (CONTRACTORS, "Contractors", ROOT, 7),
)
#: Engineering signs in through the corporate IdP (SAML SSO only).
SSO_DIVISIONS = (ENGINEERING, PLATFORM_SECURITY)

# --- hostile and international text --------------------------------------------------------------

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "Invoice<RLO>fdp.exe" displays as "Invoiceexe.pdf"
BIDI_CONTROLS = ("\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069")
XSS_IMG = "<img src=x onerror=alert(1)>"
XSS_SCRIPT = "<script>alert(1)</script>"
FORMULA_HYPERLINK = '=HYPERLINK("http://evil.example","click")'
FORMULA_DDE = "+cmd|' /C calc'!A0"
FORMULA_AT = "@SUM(1+1)"
FORMULA_MINUS = "-2+3"

# --- people ---------------------------------------------------------------------------------------


@dataclass
class Person:
    """One user across the five states: base values, dated changes and sign-in history."""

    id: int
    first: str
    last: str
    email: str
    roles: list[dict[str, Any]]
    container: int
    status: str = "active"
    job_title: str | None = None
    telephone: str | None = None
    username: str | None = None
    assignments: tuple[int, ...] = ()
    joins: int = JUL
    #: The first state without this user (None: still there in the last state).
    leaves: int | None = None
    #: (state index, attribute, value): from that state on, the attribute has the value.
    changes: list[tuple[int, str, Any]] = field(default_factory=list)
    sign_ins: list[datetime] = field(default_factory=list)
    service: bool = False
    #: Hand-placed to trigger a rule (listed in samples/README.md), as opposed to generated.
    special: bool = False

    def present(self, state: int) -> bool:
        return self.joins <= state and (self.leaves is None or state < self.leaves)

    def value(self, attribute: str, state: int) -> Any:
        current = getattr(self, attribute)
        for when, name, new in self.changes:
            if name == attribute and when <= state:
                current = new
        return current


def person_rng(user_id: int) -> random.Random:
    return random.Random(f"{SEED}/user/{user_id}")


def moment(day: date, rng: random.Random) -> datetime:
    """A sign-in time on ``day`` during (UTC) office hours."""
    return datetime.combine(day, time(), UTC) + timedelta(seconds=rng.randrange(7 * 3600, 19 * 3600))


def rhythm(rng: random.Random, start: date, end: date, gap: tuple[int, int]) -> list[datetime]:
    """Sign-ins from ``start`` to ``end``, ``gap`` days apart (mostly on weekdays)."""
    times: list[datetime] = []
    day = start + timedelta(days=rng.randint(0, gap[1]))
    while day <= end:
        if day.weekday() >= 5 and rng.random() < 0.85:
            day += timedelta(days=7 - day.weekday())
        times.append(moment(day, rng))
        day += timedelta(days=rng.randint(*gap))
    return times


FREQUENT, WEEKLY, MONTHLY = (1, 4), (3, 12), (14, 36)


def active_until(user_id: int, last: datetime | None, *, gap: tuple[int, int] = WEEKLY,
                 start: date = HISTORY_START) -> list[datetime]:
    """A regular rhythm that stops for good at ``last`` (None: runs through HISTORY_END)."""
    rng = person_rng(user_id)
    if last is None:
        return rhythm(rng, start, HISTORY_END, gap)
    return [t for t in rhythm(rng, start, last.date(), gap) if t < last - timedelta(days=1)] + [last]


def at(year: int, month: int, day: int, hour: int, minute: int, second: int) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def special_people() -> list[Person]:
    """The hand-placed users. Their ids and e-mails are referenced by README.md and exceptions.toml."""
    people = [
        # Administrators ------------------------------------------------------------------------
        Person(2700762, "Priya", "Raman", "priya.raman@example.com", roles(ADMIN), ROOT,
               job_title="Head of PKI", telephone="+15555550142",
               sign_ins=active_until(2700762, None, gap=FREQUENT)),
        Person(2700790, "Tom", "Okafor", "tom.okafor@example.com", roles(ADMIN), ENGINEERING,
               job_title="Platform Engineering Lead", sign_ins=active_until(2700790, None, gap=FREQUENT)),
        Person(2700815, "Zoë", "Ångström", "zoe.angstrom@example.com", roles(ADMIN), PLATFORM_SECURITY,
               job_title="Security Engineer", sign_ins=active_until(2700815, None, gap=FREQUENT)),
        # Dormant administrator: last sign-in 2026-06-10 (> 45 days from August, > 90 from October).
        Person(2700833, "Дмитрий", "Волков", "dmitry.volkov@example.com", roles(ADMIN), ROOT,
               job_title="IT Operations Manager",
               sign_ins=active_until(2700833, at(2026, 6, 10, 8, 12, 44))),
        # Stops signing in on 2026-09-12: dormant only for the strict 45-day profiles in November.
        Person(2700851, "José", "Núñez", "jose.nunez@example.com", roles(ADMIN), SALES_EMEA,
               job_title="Sales Operations Lead", telephone="+44 20 7946 0318",
               sign_ins=active_until(2700851, at(2026, 9, 12, 14, 3, 27))),
        # Invited as Administrator, never signed in, known since the first state.
        Person(2700874, "Grace", "Whitfield", "grace.whitfield@example.com", roles(ADMIN), ROOT,
               job_title="Chief Information Security Officer"),
        # Disabled on 2026-09-01 (status "inactive", ASSUMED value §4.4) but still Administrator.
        Person(2700896, "Victor", "Hale", "victor.hale@example.com", roles(ADMIN), ROOT,
               job_title="IT Manager", changes=[(SEP, "status", "inactive")],
               sign_ins=active_until(2700896, at(2026, 8, 20, 16, 41, 9))),
        # Shared mailbox holding Administrator.
        Person(2700910, "Certificates", "Team", "certs@example.com", roles(ADMIN), ROOT,
               sign_ins=active_until(2700910, None, gap=FREQUENT)),
        # Administrator who leaves in October.
        Person(2700925, "Kevin", "Brandt", "kevin.brandt@example.com", roles(ADMIN), ENGINEERING,
               job_title="Site Reliability Engineer", leaves=OCT,
               sign_ins=active_until(2700925, at(2026, 9, 25, 10, 30, 2))),
        # Managers ------------------------------------------------------------------------------
        # Escalated from Manager to Administrator in October.
        Person(2700940, "Marcus", "Webb", "marcus.webb@example.com", roles(MANAGER), SALES_EMEA,
               job_title="Head of Sales Operations EMEA", telephone="+44 20 7946 0511",
               changes=[(OCT, "roles", roles(ADMIN))], sign_ins=active_until(2700940, None)),
        # Restricted Manager (Sales EMEA + Marketing): the division-restricted key's user.
        Person(2700958, "Carla", "Mendes", "carla.mendes@example.com", roles(MANAGER), SALES_EMEA,
               job_title="Regional Sales Manager", assignments=(SALES_EMEA, MARKETING),
               sign_ins=active_until(2700958, None, gap=FREQUENT)),
        # Dormant Manager (privileged by auditor.toml): last sign-in 2026-05-18.
        Person(2700972, "Oliver", "Grant", "oliver.grant@example.com", roles(MANAGER), MARKETING,
               job_title="Brand Manager", sign_ins=active_until(2700972, at(2026, 5, 18, 9, 47, 31))),
        # Shared mailbox holding Manager.
        Person(2700985, "IT", "Helpdesk", "it@example.com", roles(MANAGER), ROOT,
               sign_ins=active_until(2700985, None, gap=FREQUENT)),
        # Finance -------------------------------------------------------------------------------
        Person(2701010, "Hannah", "Schmidt", "hannah.schmidt@example.com", roles(FINANCE_MANAGER), FINANCE,
               job_title="Finance Manager", telephone="+15555550177",
               sign_ins=active_until(2701010, None)),
        Person(2701024, "Ingrid", "Solberg", "ingrid.solberg@example.com", roles(FINANCE_MANAGER), FINANCE,
               job_title="Accounts Payable Lead", sign_ins=active_until(2701024, at(2026, 4, 22, 15, 8, 19))),
        # Invited Finance Manager who never signed in (as in the real 2023 response, §2.4).
        Person(2701038, "Kwame", "Mensah", "kwame.mensah@example.com", roles(FINANCE_MANAGER), FINANCE),
        # Stale users -----------------------------------------------------------------------------
        # Seasonal contractor, covered by an active stale-login exception.
        Person(2701052, "Dana", "Opsahl", "dana.opsahl@example.com", roles(STANDARD), CONTRACTORS,
               job_title="Seasonal PKI Contractor", assignments=(CONTRACTORS,),
               sign_ins=active_until(2701052, at(2026, 3, 27, 10, 22, 5))),
        Person(2701066, FORMULA_HYPERLINK, "Moreau", "c.moreau@example.com", roles(STANDARD), MARKETING,
               sign_ins=active_until(2701066, at(2026, 5, 7, 13, 55, 40))),
        # Stale from November only (last sign-in 2026-07-14).
        Person(2701080, "Pedro", "Alves", "pedro.alves@example.com", roles(LIMITED), SALES_EMEA,
               sign_ins=active_until(2701080, at(2026, 7, 14, 11, 5, 51))),
        # Either side of 90 days at the November pull (06:00 UTC): 91.9 and 89.9 days.
        Person(2701094, "Nadia", "Petrova", "nadia.petrova@example.com", roles(STANDARD), ENGINEERING,
               job_title="QA Engineer", sign_ins=active_until(2701094, at(2026, 8, 1, 9, 0, 0))),
        Person(2701108, "Tobias", "Keller", "tobias.keller@example.com", roles(STANDARD), FINANCE,
               sign_ins=active_until(2701108, at(2026, 8, 3, 9, 0, 0))),
        # Stale, leaves in October: the exception naming its id becomes stale.
        Person(2701122, "Frank", "Lowe", "frank.lowe@example.com", roles(STANDARD), MARKETING,
               leaves=OCT, sign_ins=active_until(2701122, at(2026, 3, 30, 16, 12, 3))),
        # Never signed in, known since the first state -------------------------------------------
        Person(2701136, XSS_SCRIPT, "Nguyen", "t.nguyen@example.com", roles(STANDARD), SALES_EMEA),
        Person(2701150, "محمد", "العلي", "mohammed.alali@example.com", roles(STANDARD), SALES_EMEA,
               job_title="مدير حسابات"),
        Person(2701164, "Sasha", FORMULA_MINUS, "sasha.m@example.com", roles(LIMITED), MARKETING),
        # International and hostile names of ordinary, active users -------------------------------
        Person(2701178, "雷", "李", "li.lei@example.com", roles(STANDARD), ENGINEERING,
               job_title="软件工程师", sign_ins=active_until(2701178, None, gap=FREQUENT)),
        Person(2701192, "अनन्या", "शर्मा", "ananya.sharma@example.com", roles(STANDARD), MARKETING,
               job_title="हिन्दी localisation lead", sign_ins=active_until(2701192, None)),
        Person(2701206, XSS_IMG, "Reyes", "h.reyes@example.com", roles(STANDARD), ENGINEERING,
               job_title="</td><script>alert('title')</script>", sign_ins=active_until(2701206, None)),
        Person(2701220, "Lena", "Fischer", "lena.fischer@partner-agency.example", roles(STANDARD), MARKETING,
               job_title="Agency Campaign Manager", sign_ins=active_until(2701220, None)),
        Person(2701234, "Sam", "Taylor", "sam.taylor.dev@gmail.com", roles(LIMITED), CONTRACTORS,
               assignments=(CONTRACTORS,), sign_ins=active_until(2701234, None)),
        # Allowed domain in odd case: must NOT be reported as external.
        Person(2701248, "Ravi", "Kumar", "Ravi.Kumar@Example.COM", roles(STANDARD), FINANCE,
               sign_ins=active_until(2701248, None)),
        # Shared mailbox with a non-privileged role: must NOT be reported.
        Person(2701262, "SSL", "Requests", "ssl@example.com", roles(STANDARD), ROOT,
               sign_ins=active_until(2701262, None)),
        Person(2701276, "Evelyn", "Park", "evelyn.park@example.com", [*roles(STANDARD), EV_VERIFIED_USER],
               SALES_EMEA, job_title="Code Signing Coordinator", sign_ins=active_until(2701276, None)),
        # Disabled in August, removed in September.
        Person(2701290, "Greg", "Palmer", "greg.palmer@example.com", roles(STANDARD), ENGINEERING,
               changes=[(AUG, "status", "inactive")], leaves=SEP,
               sign_ins=active_until(2701290, at(2026, 7, 24, 17, 2, 36))),
        # Leaves in November; a formula as first name shows up among the removals.
        Person(2701304, FORMULA_AT, "Okoro", "j.okoro@example.com", roles(LIMITED), SALES_EMEA,
               leaves=NOV, sign_ins=active_until(2701304, None)),
        # Joiners ---------------------------------------------------------------------------------
        Person(2761501, "Amara", "Nwosu", "amara.nwosu@example.com", roles(ADMIN), PLATFORM_SECURITY,
               job_title="PKI Engineer", joins=AUG,
               sign_ins=active_until(2761501, None, gap=FREQUENT, start=date(2026, 7, 20))),
        Person(2761512, "Mallory", f"Invoice{RLO}fdp.exe", "mallory.k@freelance-mail.example", roles(LIMITED),
               CONTRACTORS, assignments=(CONTRACTORS,), joins=AUG,
               sign_ins=active_until(2761512, None, start=date(2026, 7, 27))),
        Person(2763501, "Chris", FORMULA_DDE, "chris.p@example.com", roles(STANDARD), MARKETING, joins=SEP,
               sign_ins=active_until(2763501, None, start=date(2026, 8, 24))),
        # "pending" is ASSUMED (§4.4): invited, set-up not finished.
        Person(2765501, "Noah", "Bergström", "noah.bergstrom@example.com", roles(STANDARD), SALES_EMEA,
               status="pending", joins=OCT),
        # Invited in October, not signed in by November: under every threshold, no finding.
        Person(2765502, "Fatima", "Zahra", "fatima.zahra@example.com", roles(FINANCE_MANAGER), FINANCE,
               joins=OCT),
    ]
    for person in people:
        person.special = True
    return people


def service_people() -> list[Person]:
    """API-only users (§4.3): random-looking usernames, no sign-ins, listed by /user/api-only."""
    rng = random.Random(f"{SEED}/service-usernames")

    def username() -> str:
        return f"{rng.randrange(1_690_000_000, 1_760_000_000)}{rng.getrandbits(40):010x}"

    people = [
        # The recommended set-up: a View Only key on an Administrator service user (sandbox-view-only-key).
        Person(2740011, "CertCentral", "Auditor", "svc-auditor@example.com", roles(ADMIN), ROOT,
               username=username(), job_title="Read-only access reviews (certcentral-auditor)"),
        Person(2740012, "ACME", "Automation", "svc-acme@example.com", roles(STANDARD), ROOT,
               username=username()),
        Person(2740013, "Inventory", "Sync", "svc-inventory@example.com", roles(STANDARD), ENGINEERING,
               username=username(), assignments=(ENGINEERING,)),
        Person(2763520, "Renewal", "Bot", "svc-renewals@example.com", roles(MANAGER), ROOT,
               username=username(), joins=SEP),
    ]
    for person in people:
        person.service = True
        person.special = True
    return people


# --- the generated population ----------------------------------------------------------------------

FIRST_NAMES = (
    "Aaron", "Adaeze", "Aisha", "Alejandro", "Alina", "Amelia", "Anders", "Andrea", "Anika", "Arjun",
    "Beatriz", "Benjamin", "Björn", "Camila", "Carlos", "Caroline", "Chen", "Chloé", "Daniel", "Daniela",
    "David", "Elena", "Elif", "Emeka", "Emily", "Emma", "Erik", "Fatou", "Felix", "Fiona", "François",
    "Gabriel", "Hana", "Hassan", "Helena", "Hugo", "Ibrahim", "Ines", "Isabel", "Jakub", "James",
    "Jana", "Javier", "Jessica", "Joana", "Jonas", "Julia", "Kai", "Karin", "Kenji", "Laura", "Liam",
    "Linnea", "Lucas", "Łukasz", "Maja", "Malik", "Marco", "María", "Mateo", "Mei", "Mia", "Michael",
    "Mohamed", "Naomi", "Nikolai", "Nina", "Noor", "Olivia", "Omar", "Pablo", "Paul", "Rachel", "Rafael",
    "Rania", "Rebecca", "Samuel", "Sara", "Sean", "Sofia", "Søren", "Stefan", "Sunita", "Thomas",
    "Valentina", "Wei", "William", "Yasmin", "Yusuf", "Zara",
)
LAST_NAMES = (
    "Adeyemi", "Ahmed", "Andersson", "Bakker", "Becker", "Bianchi", "Brown", "Campbell", "Chen", "Costa",
    "Çelik", "Da Silva", "Dubois", "Eriksen", "Evans", "Fernández", "Fischer", "García", "Gonzalez",
    "Hansen", "Hoffmann", "Hughes", "Ito", "Jansen", "Jovanović", "Kaur", "Khan", "Kim", "Kowalski",
    "Larsen", "Lee", "Lehmann", "López", "Martin", "Martínez", "Mehta", "Meyer", "Moreno", "Müller",
    "Murphy", "Nakamura", "Nielsen", "Novak", "O'Brien", "Okonkwo", "Olsen", "Patel", "Peeters", "Pereira",
    "Popescu", "Rahman", "Reddy", "Ricci", "Robinson", "Rodríguez", "Rossi", "Sánchez", "Santos",
    "Schneider", "Schulz", "Singh", "Smith", "Suzuki", "Svensson", "Tanaka", "Taylor", "Van der Berg",
    "Wagner", "Walsh", "Wang", "Weber", "Williams", "Wilson", "Wójcik", "Yamamoto", "Yilmaz", "Zhang",
)
JOB_TITLES = {
    ROOT: ("Executive Assistant", "IT Support Analyst", "Office Manager", "Legal Counsel", "HR Business Partner",
           "Compliance Analyst", "Procurement Specialist"),
    ENGINEERING: ("Software Engineer", "Senior Software Engineer", "DevOps Engineer", "Engineering Manager",
                  "Site Reliability Engineer", "Release Engineer", "Data Engineer"),
    PLATFORM_SECURITY: ("Security Engineer", "PKI Engineer", "Security Analyst", "Cloud Security Architect"),
    SALES_EMEA: ("Account Executive", "Sales Engineer", "Customer Success Manager", "Inside Sales Representative",
                 "Partner Manager"),
    FINANCE: ("Accountant", "Financial Analyst", "Controller", "Billing Specialist"),
    MARKETING: ("Web Producer", "Content Strategist", "Marketing Operations Specialist", "Designer",
                "Digital Marketing Manager"),
    CONTRACTORS: ("Contractor", "Consultant", "Temporary Web Developer"),
}
#: Generated users per division in July, and their role mix (role id repeated by weight).
DIVISION_PLAN = (
    (ROOT, 30, (STANDARD,) * 5 + (LIMITED,) * 2 + (MANAGER,) * 2 + (FINANCE_MANAGER,)),
    (ENGINEERING, 80, (STANDARD,) * 7 + (LIMITED,) * 2 + (MANAGER,)),
    (PLATFORM_SECURITY, 14, (STANDARD,) * 8 + (MANAGER,) * 2),
    (SALES_EMEA, 56, (STANDARD,) * 10 + (LIMITED,) * 6 + (MANAGER,) * 3 + (FINANCE_MANAGER,)),
    (FINANCE, 22, (FINANCE_MANAGER,) * 6 + (STANDARD,) * 3 + (LIMITED,)),
    (MARKETING, 41, (STANDARD,) * 11 + (LIMITED,) * 7 + (MANAGER,) * 2),
    (CONTRACTORS, 14, (LIMITED,) * 3 + (STANDARD,) * 2),
)
#: Generated joiners per month (August..November) and leavers at the same state changes.
JOINERS = {AUG: 7, SEP: 6, OCT: 7, NOV: 6}
LEAVERS = {AUG: 4, SEP: 5, OCT: 4, NOV: 4}
JOINER_ID_BASE = {AUG: 2761000, SEP: 2763000, OCT: 2765000, NOV: 2767000}
_ASCII_FOLD = str.maketrans({"ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "ß": "ss", "æ": "ae", "Æ": "AE"})


def email_local(first: str, last: str) -> str:
    text = unicodedata.normalize("NFKD", f"{first}.{last}".translate(_ASCII_FOLD))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return "".join(c for c in text.replace(" ", "") if c.isascii() and (c.isalnum() or c in ".-"))


class Population:
    """Builds the generated users, keeping e-mails unique across the whole history."""

    def __init__(self, taken: Iterable[str]) -> None:
        self.rng = random.Random(f"{SEED}/population")
        self.emails = {e.lower() for e in taken}

    def person(self, user_id: int, container: int, role_mix: tuple[int, ...], *, joins: int,
               start: date) -> Person:
        rng = self.rng
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        local = email_local(first, last)
        email, n = f"{local}@example.com", 2
        while email in self.emails:
            email, n = f"{local}{n}@example.com", n + 1
        self.emails.add(email)
        job_title = rng.choice(JOB_TITLES[container]) if rng.random() < 0.55 else None
        telephone = None
        if rng.random() < 0.3:
            telephone = (f"+44 20 7946 0{rng.randrange(1000):03d}" if container == SALES_EMEA
                         else f"+1555555{rng.randrange(100, 200):04d}")
        role_id = rng.choice(role_mix)
        gap = rng.choice((FREQUENT, WEEKLY, WEEKLY, WEEKLY, MONTHLY, MONTHLY))
        if role_id == MANAGER:
            gap = rng.choice((FREQUENT, WEEKLY))
        return Person(
            user_id, first, last, email, roles(role_id), container,
            job_title=job_title, telephone=telephone,
            assignments=(container,) if container == CONTRACTORS else (),
            joins=joins, sign_ins=rhythm(person_rng(user_id), start, HISTORY_END, gap),
        )


def build_people() -> list[Person]:
    specials = special_people() + service_people()
    population = Population(p.email for p in specials)
    rng = population.rng
    generated: list[Person] = []
    next_id = 2702000
    for container, count, role_mix in DIVISION_PLAN:
        for _ in range(count):
            next_id += rng.randint(3, 160)
            generated.append(population.person(next_id, container, role_mix, joins=JUL, start=HISTORY_START))
    july = list(generated)
    for state in (AUG, SEP, OCT, NOV):
        previous, current = STATE_DATES[state - 1], STATE_DATES[state]
        user_id = JOINER_ID_BASE[state]
        for _ in range(JOINERS[state]):
            user_id += rng.randint(1, 30)
            container, _count, role_mix = rng.choice(DIVISION_PLAN)
            start = previous + timedelta(days=rng.randint(0, (current - previous).days - 3))
            generated.append(population.person(user_id, container, role_mix, joins=state, start=start))
        # Leavers: some are disabled one month before they disappear, as offboarding often goes.
        candidates = [p for p in july if p.leaves is None and not p.changes]
        for leaver in rng.sample(candidates, LEAVERS[state]):
            leaver.leaves = state
            cutoff = datetime.combine(current, time(), UTC) - timedelta(days=rng.randint(2, 20))
            if state > AUG and rng.random() < 0.5:
                leaver.changes.append((state - 1, "status", "inactive"))
                cutoff = datetime.combine(previous, time(), UTC) - timedelta(days=rng.randint(2, 10))
            leaver.sign_ins = [t for t in leaver.sign_ins if t < cutoff]
        # Ordinary churn the diff should show: a role change, a move, a new job title.
        stayers = [p for p in july if p.leaves is None and not p.changes and p.container != CONTRACTORS]
        promoted, moved, retitled = rng.sample(stayers, 3)
        current_role = promoted.roles[0]["id"]
        promoted.changes.append((state, "roles", roles(STANDARD if current_role == LIMITED else LIMITED)))
        moved.changes.append((state, "container", rng.choice(
            [c for c in (ENGINEERING, SALES_EMEA, FINANCE, MARKETING, ROOT) if c != moved.container])))
        retitled.changes.append((state, "job_title", rng.choice(JOB_TITLES[retitled.container])))
    return specials + generated


# --- rendering ------------------------------------------------------------------------------------


def iso(value: datetime) -> str:
    return value.astimezone(UTC).replace(microsecond=0).isoformat()


def last_sign_in(person: Person, as_of: datetime) -> datetime | None:
    earlier = [t for t in person.sign_ins if t < as_of]
    return max(earlier) if earlier else None


def render_user(person: Person, state: int, as_of: datetime) -> dict[str, Any]:
    container = person.value("container", state)
    user: dict[str, Any] = {
        "id": person.id,
        "username": person.username or person.email,
        "account_id": ACCOUNT_ID,
        "first_name": person.first,
        "last_name": person.last,
        "email": person.email,
        "status": person.value("status", state),
        "container_id": container,
        "access_roles": person.value("roles", state),
        "type": "standard",
        "has_container_assignments": bool(person.assignments),
        "is_saml_sso_only": not person.service and container in SSO_DIVISIONS,
    }
    job_title = person.value("job_title", state)
    if job_title is not None:
        user["job_title"] = job_title
    if person.telephone is not None:
        user["telephone"] = person.telephone
    if person.assignments:
        user["container_assignment_ids"] = list(person.assignments)
    last = None if person.service else last_sign_in(person, as_of)
    if last is not None:
        user["last_login_date"] = iso(last)
    return user


def containers() -> list[dict[str, Any]]:
    rng = random.Random(f"{SEED}/containers")
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return [
        {
            "id": container_id,
            "public_id": f"{rng.getrandbits(128):032x}",
            "name": name,
            "parent_id": parent_id,
            "template_id": template_id,
            "ekey": "".join(rng.choice(alphabet) for _ in range(27)),
            "has_logo": container_id == ROOT,
            "is_active": True,
        }
        for container_id, name, parent_id, template_id in CONTAINERS
    ]


KEYS = (
    ("admin", 2700762, 0, "Unrestricted key linked to Priya Raman, an unrestricted Administrator: reads everything."),
    ("view-only", 2740011, 102,
     "View Only key (102) on the Administrator service user 'CertCentral Auditor': the recommended key."),
    ("user-management", 2700790, 103, "User Management key (103) linked to Tom Okafor, an Administrator: works."),
    ("orders-only", 2740012, 100, "Orders key (100) on the ACME service user: 403 missing_permission on users."),
    ("finance-manager", 2701010, 0,
     "Linked to Hannah Schmidt, a Finance Manager: /user/me works, user lists give 403 missing_permission."),
    ("division-restricted", 2700958, 0,
     "Linked to Carla Mendes, a Manager restricted to Sales EMEA and Marketing: sees only those users."),
)


def keys() -> list[dict[str, Any]]:
    return [
        {"key": f"sandbox-{label}-key", "label": label, "user_id": user_id,
         "restricted_to_role_id": restriction, "description": description}
        for label, user_id, restriction, description in KEYS
    ]


# --- API keys, ACME URLs, IP rules, guest access (certcentral-api.md §11; issue 17) ------------------

#: (id, name, owner id, restriction, legacy, ACME, created, last used (None: never; "daily": the day
#: before each state), from state, revoked from state, {state: (field, value)} changes).
API_KEYS: tuple[tuple[Any, ...], ...] = (
    # Unrestricted key of an Administrator: key-unrestricted, high.
    (3100001, "pki-automation", 2700762, 0, False, False, at(2025, 3, 1, 9, 0, 0), "daily", JUL, None, {}),
    # The auditor's own View Only key on its service user.
    (3100002, "certcentral-auditor", 2740011, 102, False, False, at(2026, 5, 4, 10, 0, 0), "daily", JUL, None, {}),
    # Legacy key: key-legacy.
    (3100003, "legacy-billing-export", 2700790, 102, True, False, at(2021, 2, 1, 8, 0, 0), "daily", JUL, None, {}),
    # ACME directory URL on the ACME service user (covered by its IP rule): key-unrestricted, medium.
    (3100004, "acme-web-prod", 2740012, 0, False, True, at(2025, 11, 2, 12, 0, 0), "daily", JUL, None, {}),
    # Victor Hale is disabled on 2026-09-01 but his key stays active: key-owner-inactive from September.
    (3100005, "victor-scripts", 2700896, 102, False, False, at(2025, 6, 1, 9, 0, 0), at(2026, 8, 19, 22, 4, 0),
     JUL, None, {}),
    # Kevin Brandt leaves in October; his key is re-owned to Tom Okafor in November (key-owner).
    (3100006, "kevin-ci", 2700925, 102, False, False, at(2025, 9, 9, 9, 0, 0), at(2026, 9, 25, 10, 0, 0),
     JUL, None, {NOV: ("owner", 2700790)}),
    # Last used 2026-06-15: key-unused from October (108 days), not in September (78 days).
    (3100007, "quarterly-renewals", 2700790, 101, False, False, at(2025, 1, 10, 9, 0, 0),
     at(2026, 6, 15, 3, 0, 0), JUL, None, {}),
    # Created 2026-06-20, never used: key-never-used from October (103 days), not in September (73 days);
    # re-restricted from View Only to Orders in November (key-restriction).
    (3100008, "spare-key", 2700815, 102, False, False, at(2026, 6, 20, 11, 0, 0), None, JUL, None,
     {NOV: ("restricted_to_role_id", 100)}),
    # Revoked long ago: raises nothing.
    (3100009, "old-revoked", 2700762, 0, False, False, at(2024, 1, 5, 9, 0, 0), at(2024, 12, 1, 9, 0, 0),
     JUL, JUL, {}),
    # Created in October (key-created).
    (3100010, "new-pipeline", 2761501, 100, False, False, at(2026, 9, 20, 9, 0, 0), "daily", OCT, None, {}),
    # Revoked in November (key-revoked).
    (3100011, "temp-migration", 2700762, 103, False, False, at(2026, 7, 15, 9, 0, 0), "daily", JUL, NOV, {}),
)


def api_keys(state: int, as_of: datetime, people: dict[int, Person]) -> list[dict[str, Any]]:
    rendered: list[dict[str, Any]] = []
    for key_id, name, owner, restriction, legacy, acme, created, used, since, revoked, changes in API_KEYS:
        if state < since:
            continue
        for when, (field_name, value) in changes.items():
            if state >= when:
                owner = value if field_name == "owner" else owner
                restriction = value if field_name == "restricted_to_role_id" else restriction
        person = people.get(owner)
        key: dict[str, Any] = {
            "id": key_id,
            "user": {"id": owner, "first_name": person.first if person else "",
                     "last_name": person.last if person else ""},
            "status": "revoked" if revoked is not None and state >= revoked else "active",
            "create_date": iso(created),
            "name": name,
            "is_legacy": legacy,
            "restricted_to_role_id": restriction,
        }
        if used == "daily":
            key["last_used_date"] = iso(as_of - timedelta(hours=20))
        elif used is not None:
            key["last_used_date"] = iso(used)
        if acme:
            key.update(acme_directory_url="https://acme.digicert.com/v2/acme/directory/Qm***9x",
                       product_name_id="ssl_plus", organization_id=1122334, validity_days=90)
        rendered.append(key)
    return rendered


def ip_rules(state: int) -> list[dict[str, Any]]:
    """From August, one IP rule: the ACME service user may call only from the web tier."""
    if state < AUG:
        return []
    return [{"id": 7001, "date_created": "2026-07-20T09:30:00+00:00", "container_id": ROOT, "user_id": 2740012,
             "ip_address": "198.51.100.10", "ip_address_end": "198.51.100.20", "description": "Web tier (ACME)"}]


def guest_access(state: int) -> dict[str, Any]:
    """Guest certificate requests are switched on in October: guest-access-enabled from then."""
    if state >= OCT:
        return {"enabled": True, "guest_access_url": "https://www.digicert.com/secure/guest/request/Xy7Qp"}
    return {"enabled": False}


# --- the audit log: a weekly Report Library report (certcentral-api.md §11.5; issue 17) ------------

#: Scheduled by Priya Raman: a run at 06:00 every Monday and on each state's day (when the demo
#: pulls), each covering the 7 days before it; DigiCert keeps runs 90 days.
AUDIT_REPORT = "5f1c2a9e-weekly-audit-log"
PRIYA, MARCUS, AMARA = 2700762, 2700940, 2761501
#: Priya raises Marcus Webb to Administrator in the console: the October escalation, attributed.
MARCUS_PROMOTED = at(2026, 9, 15, 10, 12, 0)
AUDIT_RETENTION = timedelta(days=90)


def audit_run_times() -> list[datetime]:
    mondays = [datetime.combine(date(2026, 6, 22), time(6), UTC) + timedelta(days=7 * n) for n in range(20)]
    state_days = [datetime.combine(day, time(6), UTC) for day in STATE_DATES]
    return sorted({t for t in (*mondays, *state_days) if t <= state_days[-1]})


def audit_rows(start: datetime, end: datetime, people: dict[int, Person]) -> list[dict[str, Any]]:
    """Rows in ``start`` < time <= ``end``: Priya's SSO sign-ins, the users she adds, the one role change.

    Every joiner is added by Priya five days before the state they join in, except Amara Nwosu: her
    August Administrator role appears nowhere (privilege-change-unattributed)."""
    priya = people[PRIYA]
    events = [(t, "User SSO login", "CertCentral", "", "Success") for t in priya.sign_ins if start < t <= end]
    for person in people.values():
        if person.joins == JUL or person.id == AMARA:
            continue
        added = datetime.combine(STATE_DATES[person.joins] - timedelta(days=5), time(9, 30), UTC)
        if start < added <= end:
            role = ", ".join(r["name"] for r in person.value("roles", person.joins))
            events.append((added, "User added", "CertCentral", f"Added user {person.email} with role {role}",
                           "Success"))
    if start < MARCUS_PROMOTED <= end:
        events.append((MARCUS_PROMOTED, "User role changed", "CertCentral",
                       f"Changed the role of {people[MARCUS].email} from Manager to Administrator", "Success"))
    return [
        {"Account ID": str(ACCOUNT_ID), "Action": action, "Action taken via": via, "Activity": action,
         "Date and time (UTC)": moment_.strftime("%d-%b-%Y %H:%M:%S"), "Division/Container ID": str(ROOT),
         "Division/Container name": "Example Corp", "IP address": "198.51.100.42", "IP country": "US",
         "Message": message, "Result": result, "User ID": str(priya.id), "User name": priya.email}
        for moment_, action, via, message, result in sorted(events)
    ]


def report_library(state: int, people: dict[int, Person]) -> dict[str, Any]:
    now = datetime.combine(STATE_DATES[state], time(6), UTC)
    runs = [
        {"report_identifier": AUDIT_REPORT, "report_run_identifier": f"run-{t:%Y%m%d}",
         "report_start_date": t.strftime("%Y-%m-%d %H:%M:%S"), "status": "READY",
         "entries": audit_rows(t - timedelta(days=7), t, people)}
        for t in audit_run_times()
        if now - AUDIT_RETENTION <= t <= now
    ]
    return {
        "as_of": iso(now),
        "reports": [{"report_identifier": AUDIT_REPORT, "report_name": "Weekly audit log",
                     "report_type": "audit-logs", "schedule": "WEEKLY", "formats": ["JSON", "CSV"]}],
        "runs": runs,
    }


def build_states() -> list[dict[str, Any]]:
    people = build_people()
    states = []
    for state, day in enumerate(STATE_DATES):
        as_of = datetime.combine(day, time(), UTC)
        present = sorted((p for p in people if p.present(state)), key=lambda p: p.id)
        states.append({
            "format": FORMAT,
            "as_of": iso(as_of),
            "account": dict(ACCOUNT),
            "containers": containers(),
            "users": [render_user(p, state, as_of) for p in present if not p.service],
            "service_users": [render_user(p, state, as_of) for p in present if p.service],
            "keys": keys(),
            "api_keys": api_keys(state, as_of, {p.id: p for p in people}),
            "ip_rules": ip_rules(state),
            "guest_access": guest_access(state),
            "report_library": report_library(state, {p.id: p for p in people}),
        })
    check_invariants(states, people)
    return states


def dump(document: dict[str, Any]) -> str:
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    # Bidi controls stay escaped in the file, so editors and code review show them (Trojan Source).
    for char in BIDI_CONTROLS:
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text


def rendered() -> dict[Path, str]:
    files = {STATES_DIR / f"{day.isoformat()}.json": dump(state)
             for day, state in zip(STATE_DATES, build_states(), strict=True)}
    files[HR_EXPORT] = hr_export_csv(build_people())
    files[IDENTITY_MAP] = identity_map_csv()
    files.update({SUBSIDIARY_STATES_DIR / f"{day.isoformat()}.json": dump(state)
                  for day, state in zip(SUBSIDIARY_DATES, subsidiary_states(), strict=True)})
    return files


# --- the second sample account (issue 21: a fleet of two) ---------------------------------------------

SUBSIDIARY_DIR = HERE / "example-subsidiary"
SUBSIDIARY_STATES_DIR = SUBSIDIARY_DIR / "states"
SUBSIDIARY_ID = 1696531
SUBSIDIARY_ROOT = 734001
SUBSIDIARY_DATES = (date(2026, 10, 1), date(2026, 11, 1))
#: (id, first, last, email, roles in October, roles in November, last sign-in); written by hand:
#: a small account whose November pull makes Tom Okafor (already an Administrator of Example Corp)
#: its Administrator too, so the fleet summary shows a person privileged in both accounts.
SUBSIDIARY_PEOPLE = (
    (3800001, "Lena", "Vogel", "lena.vogel@subsidiary.example", (ADMIN,), (ADMIN,), at(2026, 9, 29, 8, 12, 0)),
    (3800002, "Tom", "Okafor", "tom.okafor@example.com", (5,), (ADMIN,), at(2026, 9, 30, 16, 40, 0)),
    (3800003, "Jonas", "Berg", "jonas.berg@subsidiary.example", (MANAGER,), (MANAGER,), at(2026, 9, 28, 9, 5, 0)),
    (3800004, "Ines", "Kraft", "ines.kraft@subsidiary.example", (5,), (5,), at(2026, 6, 2, 11, 0, 0)),
    (3800005, "Timo", "Lang", "timo.lang@subsidiary.example", (5,), (5,), at(2026, 9, 30, 7, 30, 0)),
    (3800006, "Sara", "Ng", "sara.ng@subsidiary.example", (5,), (5,), None),
)
#: The View Only key of the subsidiary, on Lena Vogel (an unrestricted Administrator).
SUBSIDIARY_KEY = "sandbox-subsidiary-view-only-key"


def subsidiary_states() -> list[dict[str, Any]]:
    """Example Subsidiary in October and November: six users, one of them shared with Example Corp."""
    rng = random.Random(f"{SEED}/subsidiary")
    root = {"id": SUBSIDIARY_ROOT, "public_id": f"{rng.getrandbits(128):032x}", "name": "Example Subsidiary",
            "parent_id": 0, "template_id": 5, "ekey": f"{rng.getrandbits(128):032x}"[:27], "has_logo": False,
            "is_active": True}
    states = []
    for index, day in enumerate(SUBSIDIARY_DATES):
        as_of = datetime.combine(day, time(), UTC)
        users = []
        for user_id, first, last, email, october, november, signed_in in SUBSIDIARY_PEOPLE:
            user: dict[str, Any] = {
                "id": user_id, "username": email, "account_id": SUBSIDIARY_ID, "first_name": first,
                "last_name": last, "email": email, "status": "active", "container_id": SUBSIDIARY_ROOT,
                "access_roles": roles(*(november if index else october)), "type": "standard",
                "has_container_assignments": False, "is_saml_sso_only": False,
            }
            if signed_in is not None:
                user["last_login_date"] = iso(signed_in)
            users.append(user)
        states.append({
            "format": FORMAT,
            "as_of": iso(as_of),
            "account": {"id": SUBSIDIARY_ID, "name": "Example Subsidiary", "instance": "us"},
            "containers": [root],
            "users": users,
            "service_users": [],
            "keys": [{"key": SUBSIDIARY_KEY, "label": "view-only", "user_id": 3800001, "restricted_to_role_id": 102,
                      "description": "View Only key (102) linked to Lena Vogel, the subsidiary's Administrator."}],
        })
    return states


# --- the HR export (issue 18: leavers and orphans) --------------------------------------------------

HR_EXPORT = ACCOUNT_DIR / "hr-export.csv"
IDENTITY_MAP = ACCOUNT_DIR / "identity-map.csv"
#: Left the company but still hold access in CertCentral: (user id, termination date).
LEAVERS_STILL_ACTIVE = {
    2700833: date(2026, 6, 12),  # Дмитрий Волков, Administrator: terminated-still-active is critical
    2701080: date(2026, 7, 17),  # Pedro Alves, Limited User: high
}
#: Not in the HR system at all: the contractor nobody owns (not-in-identity-source).
ORPHANS = {2701234}  # sam.taylor.dev@gmail.com
#: The break-glass account of auditor.toml's [identity]: not a person, so not in the HR export.
BREAK_GLASS = {2700910}  # certs@example.com
#: Shared mailboxes that belong to a person: matched through the map file, not the export.
MAPPED = {2700985: 2700790, 2701262: 2700790}  # it@ and ssl@ -> Tom Okafor
#: People the HR system knows under another address; the CertCentral one is an alias.
HR_EMAIL = {2761512: "mallory.kaur@contractors.example.com"}
MANAGERS = {
    ROOT: "priya.raman@example.com", ENGINEERING: "tom.okafor@example.com",
    PLATFORM_SECURITY: "tom.okafor@example.com", SALES_EMEA: "marcus.webb@example.com",
    FINANCE: "hannah.schmidt@example.com", MARKETING: "carla.mendes@example.com",
    CONTRACTORS: "oliver.grant@example.com",
}
DIVISION_NAMES = {cid: name for cid, name, _parent, _template in CONTAINERS}


def employee_id(user_id: int) -> str:
    return f"E{user_id - 2_700_000:05d}"


def termination(person: Person) -> date | None:
    """When HR says the person left: the hand-placed leavers, else two days before CertCentral shows it."""
    if person.id in LEAVERS_STILL_ACTIVE:
        return LEAVERS_STILL_ACTIVE[person.id]
    gone = [state for state in range(len(STATE_DATES))
            if state >= person.joins and (not person.present(state) or person.value("status", state) != "active")]
    gone = [state for state in gone if person.value("status", state) != "pending"]
    if not gone:
        return None
    return STATE_DATES[gone[0]] - timedelta(days=2)


def hr_export_csv(people: list[Person]) -> str:
    """Example Corp's HR export as of the last state: the generic preset's columns, plus name, department, manager."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["employee_id", "name", "email", "aliases", "department", "manager", "status", "termination_date"])
    for person in sorted(people, key=lambda p: p.id):
        if person.service or person.id in ORPHANS | BREAK_GLASS | set(MAPPED):
            continue
        left = termination(person)
        email = HR_EMAIL.get(person.id, person.email.lower())
        aliases = person.email if email != person.email.lower() else ""
        manager = MANAGERS[person.container]
        if manager == person.email:
            manager = "grace.whitfield@example.com"
        writer.writerow([
            employee_id(person.id), f"{person.first} {person.last}".strip(), email, aliases,
            DIVISION_NAMES[person.container], manager,
            "terminated" if left is not None else "active", left.isoformat() if left is not None else "",
        ])
    return out.getvalue()


def identity_map_csv() -> str:
    lines = ["user,person"]
    emails = {p.id: p.email for p in special_people()}
    lines.extend(f"{emails[user]},{employee_id(owner)}" for user, owner in sorted(MAPPED.items()))
    return "\n".join(lines) + "\n"


# --- invariants and the rule summary --------------------------------------------------------------


def check_invariants(states: list[dict[str, Any]], people: list[Person]) -> None:
    """Fail loudly if the generator breaks a promise README.md makes about the data."""
    ids = [p.id for p in people]
    if len(ids) != len(set(ids)):
        raise AssertionError("duplicate user ids")
    previous_login: dict[int, str] = {}
    for state in states:
        everyone = state["users"] + state["service_users"]
        emails = [u["email"].lower() for u in everyone]
        if len(emails) != len(set(emails)):
            raise AssertionError(f"duplicate e-mail in {state['as_of']}")
        by_id = {u["id"]: u for u in everyone}
        for key in state["keys"]:
            if key["user_id"] not in by_id:
                raise AssertionError(f"{key['key']} is linked to a user missing on {state['as_of']}")
        for user in everyone:
            login = user.get("last_login_date")
            if login is None:
                continue
            if login >= state["as_of"] or login < previous_login.get(user["id"], ""):
                raise AssertionError(f"user {user['id']} has an impossible last_login_date {login}")
            previous_login[user["id"]] = login
    special = {p.id for p in people if p.special}
    for month, findings in summarise(states).items():
        for rule, users in findings.items():
            stray = [u for u in users if u not in special]
            if rule not in ("new-admin", "too-many-admins") and stray:
                raise AssertionError(f"{month}: generated users {stray} trigger {rule}; only hand-placed ones may")


PULL_TIME = timedelta(hours=6)  # the demo pulls at 06:00 UTC on each state's day
PRIVILEGED = {ADMIN, MANAGER}
SHARED_MAILBOXES = ("admin@", "it@", "certs@", "pki@", "security@", "ssl@", "noc@")


def summarise(states: list[dict[str, Any]], *, user_days: int = 90, admin_days: int = 90,
              grace_days: int = 7, never_days: int = 90,
              max_admins: int = 5) -> dict[str, dict[str, list[int]]]:
    """A small re-statement of the rules (issue 4) with pci-dss-4 numbers, used for README.md.

    Not the product's rules engine: a cross-check that the data shows what README.md claims.
    """
    first_seen: dict[int, datetime] = {}
    previous_admins: set[int] = set()
    result: dict[str, dict[str, list[int]]] = {}
    for state in states:
        now = datetime.fromisoformat(state["as_of"]) + PULL_TIME
        findings: dict[str, list[int]] = {}

        def add(rule: str, user_id: int, findings: dict[str, list[int]] = findings) -> None:
            findings.setdefault(rule, []).append(user_id)

        admins: set[int] = set()
        for service, group in ((False, state["users"]), (True, state["service_users"])):
            for user in group:
                first_seen.setdefault(user["id"], now)
                role_ids = {r["id"] for r in user["access_roles"]}
                privileged = bool(role_ids & PRIVILEGED)
                active = user["status"] == "active"
                if ADMIN in role_ids:
                    admins.add(user["id"])
                    if not active:
                        add("admin-not-active", user["id"])
                    elif user["id"] not in previous_admins and previous_admins:
                        add("new-admin", user["id"])
                if privileged and service:
                    add("privileged-service-user", user["id"])
                email = user["email"].lower()
                if privileged and email.startswith(SHARED_MAILBOXES):
                    add("privileged-shared-mailbox", user["id"])
                if not email.endswith("@example.com"):
                    add("external-domain", user["id"])
                if service or not active:
                    continue
                login = user.get("last_login_date")
                if login is None:
                    known = (now - first_seen[user["id"]]).days
                    if ADMIN in role_ids and known > grace_days:
                        add("admin-never-signed-in", user["id"])
                    elif known > never_days:
                        add("never-signed-in", user["id"])
                    continue
                idle = (now - datetime.fromisoformat(login)).days
                if privileged and idle > admin_days:
                    add("admin-dormant", user["id"])
                elif not privileged and idle > user_days:
                    add("stale-login", user["id"])
        active_admins = [u["id"] for u in state["users"]
                         if u["status"] == "active" and any(r["id"] == ADMIN for r in u["access_roles"])]
        if len(active_admins) > max_admins:
            add("too-many-admins", len(active_admins))
        previous_admins = admins
        result[state["as_of"][:10]] = {rule: sorted(ids) for rule, ids in sorted(findings.items())}
    return result


def print_summary(states: list[dict[str, Any]]) -> None:
    names = {}
    for state in states:
        for user in state["users"] + state["service_users"]:
            names[user["id"]] = f"{user['email']} ({user['first_name']} {user['last_name']})"
    for label, kwargs in (("pci-dss-4 (90/90/7/90 days)", {}),
                          ("strict (45/45/7/45 days)", {"user_days": 45, "admin_days": 45, "never_days": 45})):
        print(f"== {label}")
        for month, findings in summarise(states, **kwargs).items():
            print(f"{month}")
            for rule, ids in findings.items():
                shown = ids if rule == "too-many-admins" else [f"{i} {names[i]}" for i in ids]
                print(f"  {rule}: {shown}")
    for state in states:
        print(f"{state['as_of'][:10]}: {len(state['users'])} users, {len(state['service_users'])} service users")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 if the committed states are out of date")
    mode.add_argument("--summary", action="store_true", help="print which user triggers which rule, per month")
    args = parser.parse_args(argv)

    files = rendered()
    if args.summary:
        print_summary([json.loads(text) for text in files.values()])
        return 0
    if args.check:
        stale = [path for path, text in files.items()
                 if not path.is_file() or path.read_bytes() != text.encode("utf-8")]
        extra = sorted(set(STATES_DIR.glob("*.json")) - set(files)) if STATES_DIR.is_dir() else []
        for path in [*stale, *extra]:
            print(f"out of date: {path.relative_to(HERE.parent)}", file=sys.stderr)
        if stale or extra:
            print("Run `python samples/generate.py` and commit the result.", file=sys.stderr)
            return 1
        return 0
    STATES_DIR.mkdir(parents=True, exist_ok=True)
    SUBSIDIARY_STATES_DIR.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text, encoding="utf-8", newline="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
