"""Deterministic demo data for the two sandbox accounts.

Everything comes from ``random.Random(seed)`` and the anchor instant, so equal (seed, anchor)
pairs give identical rows, ids included. The data is shaped to exercise a client, not to be
pretty: 19-digit ids above 2**53, non-ASCII names, cancelled rows with every reason (a few with
the legacy code 31), archived and deleted rows, did-not-arrive rows, repeating series, a few
double bookings (so ``/conflicts`` has something to find), inactive practitioners and archived
patients/types/cases that old appointments still point at.

Layout (account A; B is the same idea, smaller): appointments on weekdays from 8 weeks before
the anchor to 4 weeks after, in business hours of each clinic's own time zone (all chosen
without daylight saving, so fixed offsets are exact). Every name is invented.

Nothing here touches SQL: :mod:`.store` inserts what :func:`generate` returns.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

from .timefmt import format_ts

__all__ = ["DemoData", "generate"]

Row = dict[str, Any]

_ID_BASE = 1_400_000_000_000_000_000
_KINDS = {
    "business": 1,
    "practitioner": 2,
    "patient": 3,
    "appointment_type": 4,
    "patient_case": 5,
    "appointment": 6,
    "user": 7,
}
_REASONS = {
    10: "Feeling Better",
    20: "Condition Worse",
    30: "Sick",
    31: "COVID-19 related",
    40: "Away",
    50: "Other",
    60: "Work",
}

# fmt: off
FIRST_NAMES = (
    "Zoë", "José", "Łukasz", "Siobhán", "Aroha", "Björn", "Chloé", "Søren", "Renée", "Anaïs",
    "Mateus", "Priya", "Kenji", "Amara", "Tomasz", "Ngaio", "Ines", "Oisín", "Yasmin", "Élodie",
    "Rafael", "Mei", "Dmitri", "Leilani", "Henrik", "Aoife", "Kwame", "Lucía", "Tama", "Freya",
    "Joaquín", "Hana", "Nikolai", "Saoirse", "Ravi", "Małgorzata", "Olu", "Maëlle", "Kai", "Ana",
)
LAST_NAMES = (
    "Nguyễn", "Kowalczyk", "Ó Briain", "Müller", "Okonkwo", "Fernández", "Takahashi", "Ngata",
    "Lindqvist", "Dvořáková", "Bianchi", "Papadopoulos", "Øvergaard", "Tūhoe-Reid", "Castellanos",
    "Haddad", "Walsh", "Ferreira", "Kim", "Patel", "Novák", "Moreau", "Jovanović", "Ahmadi",
    "Sørensen", "McAllister", "Quispe", "Lefèvre", "Mahlangu", "Eriksson", "Tran", "Brennan",
)
# fmt: on
_DESIGNATIONS = (
    "Physiotherapist",
    "Osteopath",
    "Massage Therapist",
    "Exercise Physiologist",
    "Podiatrist",
)
# (repeat_type, repeating_interval, number_of_repeats) of the demo series
# fmt: off
_SERIES_RULES = (
    ("Weekly", 1, 5), ("Weekly", 2, 4), ("Daily", 1, 3), ("Daily", 2, 4), ("Monthly", 1, 2),
    ("Weekly", 1, 8), ("Weekly", 1, 3), ("Daily", 1, 4), ("Monthly", 1, 3), ("Weekly", 3, 3),
)
# fmt: on
_CITIES = (("Brisbane", "QLD", "4000"), ("Perth", "WA", "6000"), ("Darwin", "NT", "0800"))
_NOTES = (
    "Prefers afternoon appointments.",
    "Bring previous imaging.",
    "Running 5 minutes late — called ahead.",
    "Interpreter requested (Português).",
    "Follow up on home exercise programme.",
)


@dataclass
class DemoData:
    """Rows per table, ready for insertion. Related rows carry a ``doc`` (payload fields)."""

    tables: dict[str, list[Row]] = field(default_factory=dict)

    def add(self, table: str, row: Row) -> None:
        """Append a row to a table."""
        self.tables.setdefault(table, []).append(row)


@dataclass(frozen=True)
class _Clinic:
    name: str
    tz_label: str
    tz_identifier: str
    offset_minutes: int
    city: str
    state: str
    post_code: str
    archived: bool = False


@dataclass(frozen=True)
class _AccountPlan:
    label: str
    index: int
    clinics: tuple[_Clinic, ...]
    types: tuple[tuple[str, str, int, bool, bool], ...]  # name, category, minutes, tele, archived
    practitioners: int
    inactive_practitioners: int
    patients: int
    archived_patients: int
    cases: int
    weeks: tuple[int, int]
    daily_load: tuple[int, ...]  # choices for appointments per practitioner-day
    series: int
    double_bookings: int
    legacy: bool


_PLANS = (
    _AccountPlan(
        label="a",
        index=0,
        clinics=(
            _Clinic(
                "Harbourside Allied Health — Brisbane CBD",
                "Brisbane",
                "Australia/Brisbane",
                600,
                "Brisbane",
                "QLD",
                "4000",
            ),
            _Clinic(
                "Harbourside Allied Health — Perth",
                "Perth",
                "Australia/Perth",
                480,
                "Perth",
                "WA",
                "6000",
            ),
            _Clinic(
                "Harbourside Allied Health — Darwin",
                "Darwin",
                "Australia/Darwin",
                570,
                "Darwin",
                "NT",
                "0800",
            ),
            _Clinic(
                "Harbourside Allied Health — Toowong (closed)",
                "Brisbane",
                "Australia/Brisbane",
                600,
                "Toowong",
                "QLD",
                "4066",
                archived=True,
            ),
        ),
        types=(
            ("Initial Consultation", "Physiotherapy", 60, False, False),
            ("Standard Consultation", "Physiotherapy", 30, False, False),
            ("Extended Consultation", "Physiotherapy", 45, False, False),
            ("Telehealth Review", "Physiotherapy", 30, True, False),
            ("Dry Needling", "Physiotherapy", 30, False, False),
            ("Remedial Massage", "Massage", 60, False, False),
            ("Hydrotherapy Session", "Exercise Physiology", 45, False, False),
            ("Return to Work Assessment", "Assessment", 90, False, False),
            ("Paediatric Assessment", "Assessment", 60, True, False),
            ("Group Pilates (legacy)", "Exercise Physiology", 45, False, True),
        ),
        practitioners=30,
        inactive_practitioners=2,
        patients=420,
        archived_patients=8,
        cases=60,
        weeks=(-8, 4),
        daily_load=(1, 2, 2, 3, 3, 3, 4),
        series=10,
        double_bookings=6,
        legacy=True,
    ),
    _AccountPlan(
        label="b",
        index=1,
        clinics=(
            _Clinic(
                "Fremantle Family Physio",
                "Perth",
                "Australia/Perth",
                480,
                "Fremantle",
                "WA",
                "6160",
            ),
        ),
        types=(
            ("Initial Physio", "Physiotherapy", 45, False, False),
            ("Follow-up Physio", "Physiotherapy", 30, False, False),
            ("Telehealth Follow-up", "Physiotherapy", 20, True, False),
            ("Clinical Pilates", "Exercise Physiology", 55, False, False),
        ),
        practitioners=4,
        inactive_practitioners=0,
        patients=40,
        archived_patients=1,
        cases=5,
        weeks=(-4, 2),
        daily_load=(1, 1, 2, 2, 3),
        series=2,
        double_bookings=1,
        legacy=False,
    ),
)


def generate(seed: int, anchor: datetime) -> DemoData:
    """Build both accounts' rows for this seed and anchor."""
    data = DemoData()
    for plan in _PLANS:
        _AccountBuilder(plan, random.Random(f"{seed}:{plan.label}"), anchor, data).build()
    return data


def _make_id(account_index: int, kind: str, n: int) -> int:
    # 19 digits, above 2**53, unique across kinds and accounts, not obviously sequential.
    return (
        _ID_BASE + account_index * 10**17 + _KINDS[kind] * 10**15 + n * 1_000_003 + (n * 7919) % 997
    )


class _AccountBuilder:
    def __init__(self, plan: _AccountPlan, rng: random.Random, anchor: datetime, data: DemoData):
        self.plan = plan
        self.rng = rng
        self.anchor = anchor
        self.data = data
        self.counters: dict[str, int] = {}
        self.business_ids: list[int] = []
        self.business_offsets: dict[int, int] = {}
        self.type_ids: list[int] = []
        self.type_minutes: dict[int, int] = {}
        self.active_type_ids: list[int] = []
        self.practitioners: list[tuple[int, int, bool]] = []  # id, business id, active
        self.patients: list[tuple[int, str, bool]] = []  # id, name, archived
        self.cases_by_patient: dict[int, list[int]] = {}
        self.busy: dict[tuple[int, date], list[tuple[datetime, datetime]]] = {}

    def next_id(self, kind: str) -> int:
        n = self.counters.get(kind, 0) + 1
        self.counters[kind] = n
        return _make_id(self.plan.index, kind, n)

    def ago(self, days: float) -> str:
        return format_ts(self.anchor - timedelta(days=days))

    def build(self) -> None:
        self.build_types()
        self.build_businesses()
        self.build_practitioners()
        self.build_patients()
        self.build_cases()
        self.build_series()
        self.build_schedule()
        self.build_double_bookings()
        if self.plan.legacy:
            self.build_legacy()

    # --- related resources -------------------------------------------------------------

    def build_types(self) -> None:
        colours = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
        for i, (name, category, minutes, tele, archived) in enumerate(self.plan.types):
            type_id = self.next_id("appointment_type")
            created = self.ago(900 - i * 20)
            mode = ("optional", None, "deposit_required", None)[i % 4]
            doc: Row = {
                "name": name,
                "category": category,
                "color": colours[i % len(colours)],
                "description": f"{name} ({minutes} minutes).",
                "duration_in_minutes": minutes,
                "max_attendees": 1,
                "telehealth_enabled": tele,
                "show_in_online_bookings": not archived,
                "deposit_price": "25.00" if mode == "deposit_required" else None,
                "online_payments_enabled": mode is not None,
                "online_payments_mode": mode,
                "online_bookings_lead_time_hours": 24,
                "add_deposit_to_account_credit": False,
                "appointment_confirmation_template_ids": [],
                "appointment_follow_up_template_ids": [],
                "appointment_reminder_template_ids": [],
                "archived_at": self.ago(120) if archived else None,
                "created_at": created,
                "updated_at": self.ago(120) if archived else created,
            }
            self.data.add(
                "appointment_types", self.related(type_id, doc, duration_in_minutes=minutes)
            )
            self.type_ids.append(type_id)
            self.type_minutes[type_id] = minutes
            if not archived:
                self.active_type_ids.append(type_id)

    def build_businesses(self) -> None:
        for i, clinic in enumerate(self.plan.clinics):
            business_id = self.next_id("business")
            created = self.ago(1500 - i * 30)
            doc: Row = {
                "business_name": clinic.name,
                "display_name": clinic.name.split(" — ")[-1],
                "label": clinic.name,
                "address_1": f"{10 + i * 7} Example Street",
                "address_2": None,
                "city": clinic.city,
                "state": clinic.state,
                "post_code": clinic.post_code,
                "country": "Australia",
                "country_code": "AU",
                "time_zone": clinic.tz_label,
                "time_zone_identifier": clinic.tz_identifier,
                "appointment_type_ids": [str(t) for t in self.active_type_ids],
                "show_in_online_bookings": not clinic.archived,
                "appointment_reminders_enabled": True,
                "additional_information": None,
                "additional_invoice_information": None,
                "business_registration_name": "ABN",
                "business_registration_value": f"{51_824_753_556 + i * 11}",
                "contact_information": "(07) 5550 0100",
                "email_reply_to": f"clinic{i + 1}@example.com",
                "website_address": "https://example.com",
                "archived_at": self.ago(300) if clinic.archived else None,
                "deleted_at": None,
                "created_at": created,
                "updated_at": self.ago(300) if clinic.archived else created,
            }
            self.data.add("businesses", self.related(business_id, doc))
            self.business_ids.append(business_id)
            self.business_offsets[business_id] = clinic.offset_minutes

    def build_practitioners(self) -> None:
        open_businesses = [
            b for b, c in zip(self.business_ids, self.plan.clinics, strict=True) if not c.archived
        ]
        total = self.plan.practitioners
        for i in range(total):
            practitioner_id = self.next_id("practitioner")
            first, last = self.name(i + 17)
            active = i < total - self.plan.inactive_practitioners
            designation = _DESIGNATIONS[i % len(_DESIGNATIONS)]
            created = self.ago(1200 - i * 9)
            doc: Row = {
                "first_name": first,
                "last_name": last,
                "display_name": f"{first} {last}",
                "label": f"{first} {last}",
                "title": "Dr" if designation == "Osteopath" else None,
                "designation": designation,
                "description": f"{designation} with an interest in sports injuries.",
                "active": active,
                "show_in_online_bookings": active and i % 5 != 0,
                "created_at": created,
                "updated_at": created if active else self.ago(20),
            }
            user_id = self.next_id("user")
            default_type = self.active_type_ids[i % len(self.active_type_ids)]
            row = self.related(
                practitioner_id, doc, user_id=user_id, default_appointment_type_id=default_type
            )
            self.data.add("practitioners", row)
            self.practitioners.append(
                (practitioner_id, open_businesses[i % len(open_businesses)], active)
            )

    def name(self, n: int) -> tuple[str, str]:
        first = FIRST_NAMES[(n * 7) % len(FIRST_NAMES)]
        last = LAST_NAMES[(n * 11 + n // len(FIRST_NAMES)) % len(LAST_NAMES)]
        return first, last

    def build_patients(self) -> None:
        rng = self.rng
        total = self.plan.patients
        for i in range(total):
            patient_id = self.next_id("patient")
            # The first ones cover the names tests look for; the rest are shuffled.
            if i < len(FIRST_NAMES):
                first = FIRST_NAMES[i]
                last = LAST_NAMES[i % len(LAST_NAMES)]
            else:
                first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            archived = i >= total - self.plan.archived_patients
            created = self.ago(rng.uniform(90, 1400))
            city, state, post_code = _CITIES[i % len(_CITIES)]
            slug = f"patient{i + 1}.{self.plan.label}"
            dob = date(1950, 1, 1) + timedelta(days=rng.randrange(0, 365 * 60))
            doc: Row = {
                "first_name": first,
                "last_name": last,
                "preferred_first_name": first[:3] if i % 17 == 0 else None,
                "title": ("Mr", "Ms", "Mx", "Dr", None)[i % 5],
                "label": f"{first} {last}",
                "date_of_birth": dob.isoformat(),
                "email": f"{slug}@example.com",
                "patient_phone_numbers": [
                    {
                        "number": f"0400 {100 + i % 900:03d} {i % 1000:03d}",
                        "normalized_number": f"61400{100 + i % 900:03d}{i % 1000:03d}",
                        "phone_type": "Mobile",
                    }
                ],
                "address_1": f"{i + 1} Sample Road",
                "address_2": None,
                "address_3": None,
                "city": city,
                "state": state,
                "post_code": post_code,
                "country": "Australia",
                "country_code": "AU",
                "time_zone": None if i % 3 else "Australia/Brisbane",
                "sex": None,
                "gender": None,
                "gender_identity": None,
                "pronouns": None,
                "occupation": None,
                "emergency_contact": None,
                "notes": rng.choice((None, None, "Allergic to latex.")),
                "appointment_notes": None,
                "old_reference_id": f"LEGACY-{i + 1:04d}" if i % 10 == 0 else None,
                "referral_source": None,
                "reminder_type": "SMS & Email",
                "receives_cancellation_emails": True,
                "receives_confirmation_emails": True,
                "accepted_privacy_policy": None if i % 7 == 0 else i % 4 != 0,
                "accepted_email_marketing": False,
                "accepted_sms_marketing": False,
                "custom_fields": None,
                "dva_card_number": None,
                "medicare": None,
                "medicare_reference_number": None,
                "invoice_default_to": None,
                "invoice_email": None,
                "invoice_extra_information": None,
                "archived_at": self.ago(10) if archived else None,
                "deleted_at": None,
                "merged_at": None,
                "created_at": created,
                "updated_at": self.ago(10) if archived else created,
            }
            self.data.add("patients", self.related(patient_id, doc))
            self.patients.append((patient_id, f"{first} {last}", archived))

    def build_cases(self) -> None:
        rng = self.rng
        for i in range(self.plan.cases):
            case_id = self.next_id("patient_case")
            patient_id = self.patients[(i * 7) % len(self.patients)][0]
            issue = (self.anchor - timedelta(days=rng.randrange(30, 400))).date()
            referral_type = ("dva", "medicare", None, None)[i % 4]
            closed = i % 6 == 5
            archived = i % 20 == 19
            created = format_ts(datetime.combine(issue, time(1), UTC))
            doc: Row = {
                "name": ("Lower back pain", "Knee rehabilitation", "Shoulder", "Post-op ankle")[
                    i % 4
                ],
                "notes": None if i % 3 else "Referred by GP.",
                "issue_date": issue.isoformat(),
                "expiry_date": (issue + timedelta(days=365)).isoformat(),
                "closed": closed,
                "closed_at": self.ago(5) if closed else None,
                "max_sessions": 10 if referral_type else None,
                "max_invoiceable_amount": "1500.00" if referral_type == "dva" else None,
                "referral": referral_type is not None,
                "referral_type": referral_type,
                "include_cancelled_attendees": False,
                "include_dna_attendees": False,
                "attendee_ids": [],
                "archived_at": self.ago(3) if archived else None,
                "created_at": created,
                "updated_at": self.ago(3) if archived or closed else created,
            }
            self.data.add("patient_cases", self.related(case_id, doc, patient_id=patient_id))
            self.cases_by_patient.setdefault(patient_id, []).append(case_id)

    def related(self, row_id: int, doc: Row, **columns: Any) -> Row:
        return {"id": row_id, "account": self.plan.label, "doc": doc, **columns}

    # --- appointments ------------------------------------------------------------------

    def local_start(self, business_id: int, day: date, minute_of_day: int) -> datetime:
        zone = timezone(timedelta(minutes=self.business_offsets[business_id]))
        local = datetime.combine(day, time(), zone) + timedelta(minutes=minute_of_day)
        return local.astimezone(UTC)

    def free(self, practitioner_id: int, start: datetime, end: datetime) -> bool:
        slots = self.busy.get((practitioner_id, start.date()), [])
        return all(end <= s or start >= e for s, e in slots)

    def reserve(self, practitioner_id: int, start: datetime, end: datetime) -> None:
        self.busy.setdefault((practitioner_id, start.date()), []).append((start, end))

    def pick_patient(self, start: datetime) -> tuple[int, str]:
        recent = start > self.anchor - timedelta(days=14)
        while True:
            patient_id, name, archived = self.patients[
                min(int(self.rng.paretovariate(1.2)) - 1, len(self.patients) - 1)
                if self.rng.random() < 0.3
                else self.rng.randrange(len(self.patients))
            ]
            if not (archived and recent):
                return patient_id, name

    def appointment(
        self,
        *,
        practitioner_id: int,
        business_id: int,
        start: datetime,
        type_id: int,
        patient: tuple[int, str],
        status: bool = True,
    ) -> Row:
        rng = self.rng
        minutes = self.type_minutes[type_id]
        end = start + timedelta(minutes=minutes)
        anchor = self.anchor
        created = min(
            start - timedelta(days=rng.uniform(1, 40)), anchor - timedelta(hours=rng.uniform(1, 72))
        )
        online = rng.random() < 0.15
        cases = self.cases_by_patient.get(patient[0])
        row: Row = {
            "id": self.next_id("appointment"),
            "account": self.plan.label,
            "patient_id": patient[0],
            "practitioner_id": practitioner_id,
            "appointment_type_id": type_id,
            "business_id": business_id,
            "patient_case_id": cases[0] if cases and rng.random() < 0.6 else None,
            "repeated_from_id": None,
            "starts_at": format_ts(start),
            "ends_at": format_ts(end),
            "created_at": format_ts(created),
            "updated_at": format_ts(created),
            "archived_at": None,
            "cancelled_at": None,
            "deleted_at": None,
            "cancellation_reason": None,
            "cancellation_note": None,
            "did_not_arrive": False,
            "patient_arrived": False,
            "email_reminder_sent": start < anchor + timedelta(days=1),
            "sms_reminder_sent": start < anchor + timedelta(days=1),
            "has_patient_appointment_notes": rng.random() < 0.1,
            "notes": rng.choice(_NOTES) if rng.random() < 0.1 else None,
            "online_booking_policy_accepted": True if online else None,
            "booking_ip_address": f"203.0.113.{rng.randrange(1, 255)}" if online else None,
            "patient_name": patient[1],
            "invoice_status": None,
            "treatment_note_status": None,
            "repeat_type": None,
            "repeating_interval": None,
            "number_of_repeats": None,
        }
        if status:
            self.assign_status(row, start, end, created)
        return row

    def assign_status(self, row: Row, start: datetime, end: datetime, created: datetime) -> None:
        rng = self.rng
        roll = rng.random()
        past = start < self.anchor
        if roll < (0.07 if past else 0.05):
            reason = rng.choice((10, 20, 30, 30, 40, 50, 50, 60))
            cancelled = created + (min(start, self.anchor) - created) * rng.uniform(0.2, 0.95)
            row["cancelled_at"] = format_ts(cancelled)
            row["cancellation_reason"] = reason
            row["cancellation_note"] = rng.choice((None, "Called the clinic.", "Via SMS reply."))
            row["updated_at"] = row["cancelled_at"]
        elif past and roll < 0.09:
            row["archived_at"] = format_ts(min(end + timedelta(days=1), self.anchor))
            row["updated_at"] = row["archived_at"]
        elif past and roll < 0.13:
            row["did_not_arrive"] = True
            row["updated_at"] = format_ts(min(end + timedelta(minutes=30), self.anchor))
        elif past:
            row["patient_arrived"] = True
            row["invoice_status"] = 20 if rng.random() < 0.85 else 10
            row["treatment_note_status"] = 90 if rng.random() < 0.8 else 10
            row["updated_at"] = format_ts(
                min(end + timedelta(minutes=rng.randrange(5, 240)), self.anchor)
            )

    def build_series(self) -> None:
        first_week = self.plan.weeks[0] + 2
        active = [p for p in self.practitioners if p[2]]
        for n in range(self.plan.series):
            repeat_type, interval, repeats = _SERIES_RULES[n % len(_SERIES_RULES)]
            practitioner_id, business_id, _ = active[(n * 3) % len(active)]
            day = self.anchor.date() + timedelta(weeks=first_week + n % 6, days=n % 5)
            start = self.local_start(business_id, day, 7 * 60 + 30)  # 07:30, before the grid
            type_id = self.active_type_ids[n % len(self.active_type_ids)]
            patient = self.pick_patient(start)
            origin = self.appointment(
                practitioner_id=practitioner_id,
                business_id=business_id,
                start=start,
                type_id=type_id,
                patient=patient,
            )
            rule = {
                "repeat_type": repeat_type,
                "repeating_interval": interval,
                "number_of_repeats": repeats,
            }
            origin.update(rule)
            if n == 0:  # keep the first series fully booked so every child is visible
                self.clear_status(origin)
            self.data.add("appointments", origin)
            self.reserve(
                practitioner_id, start, start + timedelta(minutes=self.type_minutes[type_id])
            )
            for k in range(1, repeats + 1):
                child_start = series_start(start, repeat_type, interval * k)
                child = self.appointment(
                    practitioner_id=practitioner_id,
                    business_id=business_id,
                    start=child_start,
                    type_id=type_id,
                    patient=patient,
                    status=n != 0,
                )
                child.update(rule)
                child["repeated_from_id"] = origin["id"]
                child["created_at"] = origin["created_at"]
                child["updated_at"] = max(child["updated_at"], origin["created_at"])
                if child["cancelled_at"] is not None:
                    child["cancelled_at"] = max(child["cancelled_at"], origin["created_at"])
                    child["updated_at"] = child["cancelled_at"]
                child["patient_case_id"] = origin["patient_case_id"]
                self.data.add("appointments", child)
                minutes = self.type_minutes[type_id]
                self.reserve(practitioner_id, child_start, child_start + timedelta(minutes=minutes))

    def clear_status(self, row: Row) -> None:
        row.update(
            archived_at=None,
            cancelled_at=None,
            cancellation_reason=None,
            cancellation_note=None,
            did_not_arrive=False,
            updated_at=row["created_at"],
        )

    def build_schedule(self) -> None:
        rng = self.rng
        first, last = self.plan.weeks
        grid = [8 * 60 + 60 * h for h in range(9)]  # 08:00 .. 16:00 local
        for practitioner_id, business_id, active in self.practitioners:
            weeks = range(first, last) if active else range(first, first + 4)
            for week in weeks:
                for weekday in range(5):
                    day = self.anchor.date() + timedelta(weeks=week, days=weekday)
                    count = rng.choice(self.plan.daily_load)
                    for minute in sorted(rng.sample(grid, count)):
                        start = self.local_start(business_id, day, minute)
                        type_id = rng.choice(
                            self.active_type_ids if active or rng.random() < 0.7 else self.type_ids
                        )
                        end = start + timedelta(minutes=self.type_minutes[type_id])
                        if not self.free(practitioner_id, start, end):
                            continue
                        self.reserve(practitioner_id, start, end)
                        self.data.add(
                            "appointments",
                            self.appointment(
                                practitioner_id=practitioner_id,
                                business_id=business_id,
                                start=start,
                                type_id=type_id,
                                patient=self.pick_patient(start),
                            ),
                        )

    def build_double_bookings(self) -> None:
        """Deliberate overlaps, so ``/conflicts`` answers true for some rows."""
        rows = self.data.tables["appointments"]
        candidates = [
            r
            for r in rows
            if r["account"] == self.plan.label
            and r["cancelled_at"] is None
            and r["archived_at"] is None
            and r["starts_at"] > format_ts(self.anchor)
        ]
        for r in self.rng.sample(candidates, self.plan.double_bookings):
            start = datetime.fromisoformat(r["starts_at"]) + timedelta(minutes=15)
            clash = self.appointment(
                practitioner_id=r["practitioner_id"],
                business_id=r["business_id"],
                start=start,
                type_id=r["appointment_type_id"],
                patient=self.pick_patient(start),
                status=False,
            )
            clash["notes"] = "Double-booked on purpose (sandbox conflict demo)."
            self.data.add("appointments", clash)

    def build_legacy(self) -> None:
        """Old rows: COVID-era cancellations (code 31), legacy deletes, an archived clinic."""
        business_id = self.business_ids[-1]  # the archived clinic
        inactive = [p for p in self.practitioners if not p[2]] or self.practitioners
        for n in range(8):
            day = self.anchor.date() - timedelta(days=1500 - n * 9)
            start = self.local_start(business_id, day, 9 * 60 + 60 * (n % 4))
            row = self.appointment(
                practitioner_id=inactive[n % len(inactive)][0],
                business_id=business_id,
                start=start,
                type_id=self.type_ids[-1],
                patient=self.patients[n][:2],
                status=False,
            )
            created = datetime.fromisoformat(row["created_at"])
            if n < 5:
                row["cancelled_at"] = format_ts(created + timedelta(hours=2))
                row["cancellation_reason"] = 31
                row["cancellation_note"] = "Isolating."
                row["updated_at"] = row["cancelled_at"]
            elif n < 7:
                row["deleted_at"] = format_ts(start + timedelta(days=2))
                row["updated_at"] = row["deleted_at"]
            else:
                row["patient_arrived"] = True
                row["invoice_status"] = 30
                row["treatment_note_status"] = 90
            self.data.add("appointments", row)


def series_start(origin: datetime, repeat_type: str, steps: int) -> datetime:
    """The start of the ``steps``-th occurrence after ``origin`` (steps counts intervals)."""
    if repeat_type == "Daily":
        return origin + timedelta(days=steps)
    if repeat_type == "Weekly":
        return origin + timedelta(weeks=steps)
    month_index = origin.month - 1 + steps
    year, month = origin.year + month_index // 12, month_index % 12 + 1
    for day in range(origin.day, 27, -1):  # clamp 31 Jan + 1 month to the month's last day
        try:
            return origin.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    return origin.replace(year=year, month=month, day=min(origin.day, 28))


def cancellation_description(code: int | None) -> str:
    """Response text for a cancellation code; ``""`` when not cancelled (as real payloads)."""
    if code is None:
        return ""
    return _REASONS.get(code, "Other")
