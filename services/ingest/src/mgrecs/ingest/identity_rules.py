"""Customer identities: one customer id however upstream spells it (docs/concepts.md,
Customer identities).

Pure rules: standardize a raw customer id and normalise e-mail and phone into the keys of an
order's customer. How keys join existing customers (`choose_unified`) and the PostgreSQL mapping
that remembers the decisions live in `mgrecs.store.identities`; `InMemoryResolver` here applies
the same decisions to dictionaries.
"""

import unicodedata
from collections.abc import Iterable
from typing import Literal

import phonenumbers
from pydantic import BaseModel, Field, field_validator

from mgrecs.common.settings import Settings
from mgrecs.store.identities import Alias, CustomerKeys, choose_unified

MergeKey = Literal["email", "phone"]
GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


class IdentityRules(BaseModel):
    """How customer ids are standardized and which contact details merge customers."""

    prefixes: list[str] = Field(default_factory=list)
    """Known id prefixes (e.g. "CUST-", "C"), matched case-insensitively; the longest goes."""
    case_fold: bool = True
    strip_leading_zeros: bool = True
    merge_by: list[MergeKey] = Field(default_factory=list)
    phone_region: str | None = None
    """Region of phone numbers written without a country code (e.g. "GB")."""
    gmail_canonical: bool = False
    """Gmail ignores dots and "+tag" in the local part; when set, so do we."""

    @field_validator("prefixes")
    @classmethod
    def _longest_first(cls, value: list[str]) -> list[str]:
        folded = {unicodedata.normalize("NFKC", p.strip()).casefold() for p in value}
        return sorted((p for p in folded if p), key=len, reverse=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> "IdentityRules":
        return cls.model_validate(
            {
                "prefixes": _split(settings.customer_id_prefixes),
                "case_fold": settings.customer_id_case_fold,
                "strip_leading_zeros": settings.customer_id_strip_leading_zeros,
                "merge_by": _split(settings.merge_customers_by),
                "phone_region": settings.phone_default_region or None,
                "gmail_canonical": settings.email_gmail_canonical,
            }
        )


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def standardize_customer_id(raw: str, rules: IdentityRules) -> str:
    """Apply the rules in order: trim, NFKC, case fold, known prefix, leading zeros.

    Raises ValueError when nothing is left, so an order never lands under an empty id.
    """
    value = unicodedata.normalize("NFKC", raw.strip()).strip()
    if rules.case_fold:
        value = value.casefold()
    for prefix in rules.prefixes:
        if len(value) > len(prefix) and value.casefold().startswith(prefix):
            value = value[len(prefix) :]
            break
    if rules.strip_leading_zeros and value.isascii() and value.isdigit():
        value = value.lstrip("0") or "0"
    if not value:
        raise ValueError(f"customer id {raw!r} is empty once standardized")
    return value


def normalize_email(raw: str | None, rules: IdentityRules) -> str | None:
    """Trimmed and lower-cased; None when it cannot be an address (it then merges nothing)."""
    if raw is None:
        return None
    value = unicodedata.normalize("NFKC", raw.strip()).lower()
    local, at, domain = value.rpartition("@")
    if not at or not local or "." not in domain:
        return None
    if rules.gmail_canonical and domain in GMAIL_DOMAINS:
        local = local.split("+", 1)[0].replace(".", "")
        domain = "gmail.com"
        if not local:
            return None
    return f"{local}@{domain}"


def normalize_phone(raw: str | None, rules: IdentityRules) -> str | None:
    """E.164 (+442079460958); None when unparsable or not a valid number."""
    if raw is None or not raw.strip():
        return None
    try:
        number = phonenumbers.parse(raw, rules.phone_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def customer_keys(
    raw_id: str, email: str | None, phone: str | None, rules: IdentityRules
) -> CustomerKeys:
    """The keys of one order's customer; contact details only for the configured merges."""
    return CustomerKeys(
        customer_id=standardize_customer_id(raw_id, rules),
        email=normalize_email(email, rules) if "email" in rules.merge_by else None,
        phone=normalize_phone(phone, rules) if "phone" in rules.merge_by else None,
    )


class InMemoryResolver:
    """The resolver's decisions on dictionaries: for tests of the rules and one-off tools."""

    def __init__(self, rules: IdentityRules) -> None:
        self.rules = rules
        self.aliases: dict[Alias, str] = {}
        self.first_seen: dict[str, int] = {}

    def resolve_now(self, keys: CustomerKeys) -> str:
        winner, merged = choose_unified(keys, self.aliases, self.first_seen)
        self.first_seen.setdefault(winner, len(self.first_seen))
        if merged:
            for alias, unified in self.aliases.items():
                if unified in merged:
                    self.aliases[alias] = winner
        for alias in keys.aliases:
            self.aliases[alias] = winner
        return winner

    async def resolve(self, keys: CustomerKeys) -> str:
        return self.resolve_now(keys)

    def members(self, unified: str) -> Iterable[Alias]:
        return sorted(alias for alias, owner in self.aliases.items() if owner == unified)
