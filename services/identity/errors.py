"""Why identity's use cases refuse: plain exceptions, no HTTP in them. The API and the
pages turn them into problem details (problems.py), the SMS desk never sees them."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .domain import FieldError


class IdentityError(Exception):
    """A use case refused; the subclass says why."""


@dataclass
class Invalid(IdentityError):
    errors: list[FieldError]


@dataclass
class NotAllowed(IdentityError):
    detail: str | None = None     # None: the platform's usual "not allowed"


@dataclass
class TooManyRegistrations(IdentityError):
    retry_after: int


@dataclass
class TooManyLogins(IdentityError):
    retry_after: int


class NationalIdTaken(IdentityError):
    pass


class InvalidCredentials(IdentityError):
    """Wrong username or password (or an account that no longer exists)."""


class WrongCurrentPassword(IdentityError):
    """A password change whose current password is wrong."""


@dataclass
class Locked(IdentityError):
    until: datetime               # UTC
    local_until: datetime         # the same moment on the platform's wall clock
    retry_after: int


class TemporaryPasswordExpired(IdentityError):
    pass


class UsernameTaken(IdentityError):
    pass


@dataclass
class WardNotFound(IdentityError):
    ward_id: str


class CitizenNotFound(IdentityError):
    """No such citizen in the officer's ward."""


class PasswordNotSent(IdentityError):
    """notify could not be asked to text the temporary password."""


@dataclass
class WardExists(IdentityError):
    """The ward is already open: its official code, or the ward id asked for, is taken.
    `ward_id` is the open ward's id (the platform CLI reports "already open")."""
    field: str                    # official_code | ward_id
    ward_id: str
    official_code: str | None = None

    def __str__(self) -> str:
        return f"{self.field} already open as {self.ward_id}"


class OfficerNotFound(IdentityError):
    """No such officer (or not one the caller may see)."""


@dataclass
class PhoneNotVerified(IdentityError):
    """The right password, but a web registration whose phone is not proven yet."""
    citizen_id: str


class PhoneAlreadyVerified(IdentityError):
    """The account is not waiting for a phone code (proven already, or never needed one)."""


class PhoneCodeExpired(IdentityError):
    """No code in force for the account (expired, used up or never sent): ask for a new one."""


@dataclass
class PhoneCodeWrong(IdentityError):
    tries_left: int


class PhoneCodesExhausted(IdentityError):
    """Five wrong tries: that code no longer works."""


@dataclass
class TooManyPhoneCodes(IdentityError):
    retry_after: int
