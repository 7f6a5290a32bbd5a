"""Client passkeys: register one after a link or code sign-in, sign in with it without email.

The ceremonies are py_webauthn's; what is ours: challenges kept server-side (as hashes),
single-use and short-lived; the relying party's id and origin taken from the base URL only;
the sign counter stored and checked; and one answer for every refusal, so that a passkey
sign-in never tells whether a credential (or an address) belongs to a client.
"""
import hashlib
import hmac
import ipaddress
import json
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from ua_parser import parse as parse_user_agent
from webauthn import (generate_authentication_options, generate_registration_options, options_to_json,
                      verify_authentication_response, verify_registration_response)
from webauthn.helpers import (base64url_to_bytes, bytes_to_base64url, parse_authentication_credential_json,
                              parse_client_data_json, parse_registration_credential_json)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (AuthenticatorSelectionCriteria, AuthenticatorTransport,
                                      PublicKeyCredentialDescriptor, ResidentKeyRequirement,
                                      UserVerificationRequirement)

from . import audit
from .clock import utcnow
from .i18n import N_
from .models import Client, ClinicianPasskey, Passkey, Practice, PasskeyChallenge, write_transaction
from .runtime import settings

CHALLENGE_LIFETIME = timedelta(minutes=5)
TIMEOUT_MS = int(CHALLENGE_LIFETIME.total_seconds() * 1000)
MAX_PER_CLIENT = 20  # a client with more devices than this can remove one first
REFUSED = N_("That passkey did not sign you in. Try again, or sign in with an email link.")


class PasskeyRefused(Exception):
    """A ceremony we do not accept. `reason` is for the audit trail, never for the browser:
    every refusal shows the person the same words."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def passkeys_possible(base_url: str | None = None) -> bool:
    """A browser gives passkeys only to a domain name (or localhost), never to an IP address."""
    host = urlsplit(base_url or settings().base_url).hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return bool(host)
    return False


def relying_party() -> tuple[str, str]:
    """(RP ID, origin), from PORTAL_BASE_URL alone: never from the request's Host."""
    base = urlsplit(settings().base_url)
    return base.hostname, f"{base.scheme}://{base.netloc}"


def user_handle(client: Client) -> bytes:
    """The opaque id the authenticator keeps for the client: derived, so nothing is stored, and
    saying nothing about who they are (not their row id, not their address)."""
    return hmac.new(settings().secret_key.encode(), f"passkey-user:{client.id}".encode(), hashlib.sha256).digest()


def device_name(user_agent: str | None) -> str:
    """"Chrome on Android", in words a client recognises on the list of their passkeys."""
    parsed = parse_user_agent(user_agent or "")
    browser = parsed.user_agent.family if parsed and parsed.user_agent else ""
    system = parsed.os.family if parsed and parsed.os else ""
    if browser and browser != "Other" and system and system != "Other":
        return f"{browser} on {system}"[:120]
    return (browser if browser and browser != "Other" else system if system and system != "Other" else "A browser")[:120]


def _hash(challenge: bytes) -> str:
    return hashlib.sha256(challenge).hexdigest()


def _new_challenge(challenge: bytes, purpose: str, client: Client | None, now: datetime, clinician=None) -> None:
    with write_transaction():
        # Old rows go as new ones come, so the table stays as small as the last few minutes.
        PasskeyChallenge.delete().where(PasskeyChallenge.expires_at < now - CHALLENGE_LIFETIME).execute()
        PasskeyChallenge.create(challenge_hash=_hash(challenge), purpose=purpose, client=client, clinician=clinician,
                                created_at=now, expires_at=now + CHALLENGE_LIFETIME)


def _take_challenge(client_data_json: bytes, purpose: str, client: Client | None, now: datetime,
                    clinician=None) -> bytes:
    """The challenge the browser signed, if we issued it for this and it is unused and fresh;
    used up here whatever follows, so a response can never be replayed."""
    try:
        challenge = parse_client_data_json(client_data_json).challenge
    except Exception:  # py_webauthn raises several kinds for malformed client data
        raise PasskeyRefused("malformed") from None
    condition = ((PasskeyChallenge.challenge_hash == _hash(challenge)) & (PasskeyChallenge.purpose == purpose)
                 & PasskeyChallenge.used_at.is_null() & (PasskeyChallenge.expires_at > now))
    if client is not None:
        condition &= PasskeyChallenge.client == client
    if clinician is not None:
        condition &= PasskeyChallenge.clinician == clinician
    if not PasskeyChallenge.update(used_at=now).where(condition).execute():
        raise PasskeyRefused("stale_challenge")
    return challenge


def registration_options(client: Client, *, now: datetime | None = None) -> str:
    """The options for navigator.credentials.create(), as JSON: a discoverable credential
    with user verification, not one of those the client already has."""
    now = now or utcnow()
    rp_id, _ = relying_party()
    options = generate_registration_options(
        rp_id=rp_id, rp_name=Practice.current().name or "Portico", user_id=user_handle(client), user_name=client.email,
        user_display_name=client.name, timeout=TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED, user_verification=UserVerificationRequirement.REQUIRED),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(p.credential_id))
                             for p in Passkey.of(client)])
    _new_challenge(options.challenge, "register", client, now)
    return options_to_json(options)


def register(client: Client, credential, *, user_agent: str | None = None, ip: str | None = None,
             now: datetime | None = None) -> Passkey:
    """Verify navigator.credentials.create()'s answer (a JSON object) and keep the passkey."""
    now = now or utcnow()
    parsed = _parsed_registration(credential)
    if client.archived_at is not None:
        raise PasskeyRefused("archived")
    challenge = _take_challenge(parsed.response.client_data_json, "register", client, now)
    try:
        verified = _verified_registration(parsed, challenge)
    except PasskeyRefused:
        audit.record("passkey_refused", client=client, ip=ip, at=now, detail="registration did not verify")
        raise
    with write_transaction():
        client.lock()
        passkey = _kept(Passkey, Passkey.of(client), parsed, verified, user_agent, now, client=client)
        audit.record("passkey_added", client=client, ip=ip, at=now, detail=passkey.device)
    return passkey


def _parsed_registration(credential):
    try:
        return parse_registration_credential_json(_as_json(credential))
    except Exception:
        raise PasskeyRefused("malformed") from None


def _verified_registration(parsed, challenge: bytes):
    rp_id, origin = relying_party()
    try:
        return verify_registration_response(credential=parsed, expected_challenge=challenge, expected_rp_id=rp_id,
                                            expected_origin=origin, require_user_verification=True)
    except WebAuthnException:
        raise PasskeyRefused("unverified") from None


def _kept(model, owners_passkeys, parsed, verified, user_agent: str | None, now: datetime, **owner):
    """Store a verified passkey (a client's or a clinician's), inside the caller's transaction:
    refused past the per-person limit, or when that credential is kept already."""
    credential_id = bytes_to_base64url(verified.credential_id)
    if owners_passkeys.count() >= MAX_PER_CLIENT:
        raise PasskeyRefused("too_many")
    if model.select().where(model.credential_id == credential_id).exists():
        raise PasskeyRefused("already_registered")
    transports = ",".join(t.value for t in (parsed.response.transports or []) if isinstance(t, AuthenticatorTransport))
    return model.create(credential_id=credential_id, public_key=bytes_to_base64url(verified.credential_public_key),
                        sign_count=verified.sign_count, transports=transports[:255], device=device_name(user_agent),
                        created_at=now, **owner)


def sign_in_options(*, now: datetime | None = None) -> str:
    """The options for navigator.credentials.get(): no address and no list of credentials
    (discoverable ones), so the page gives nothing away about who might be a client."""
    now = now or utcnow()
    rp_id, _ = relying_party()
    options = generate_authentication_options(rp_id=rp_id, timeout=TIMEOUT_MS,
                                              user_verification=UserVerificationRequirement.REQUIRED)
    _new_challenge(options.challenge, "sign_in", None, now)
    return options_to_json(options)


def sign_in(credential, *, ip: str | None = None, now: datetime | None = None) -> Client:
    """The client whose passkey signed this challenge, or PasskeyRefused (audited: on the
    client's trail when the credential is theirs, on nobody's when it is unknown)."""
    now = now or utcnow()
    try:
        parsed = parse_authentication_credential_json(_as_json(credential))
    except Exception:
        raise PasskeyRefused("malformed") from None
    passkey = Passkey.get_or_none(Passkey.credential_id == bytes_to_base64url(parsed.raw_id))
    client = passkey.client if passkey else None

    def refuse(reason: str, words: str):
        detail = f"{passkey.device}: {words}" if passkey else f"unknown passkey: {words}"
        audit.record("passkey_refused", client=client, ip=ip, at=now, detail=detail)
        raise PasskeyRefused(reason)

    try:  # used up first, whatever the credential: no answer can be replayed
        challenge = _take_challenge(parsed.response.client_data_json, "sign_in", None, now)
    except PasskeyRefused as refused:
        refuse(refused.reason, "the sign-in request was stale or already used")
    if passkey is None:
        refuse("unknown", "no client has it")
    if client.archived_at is not None:
        refuse("archived", "the client is archived")
    handle = parsed.response.user_handle
    if handle is not None and not hmac.compare_digest(handle, user_handle(client)):
        refuse("wrong_user", "it names another account")
    _check_assertion(parsed, challenge, passkey, refuse, now,
                     counter_words="its counter went backwards (a copied passkey?)",
                     unverified_words="the signature did not verify")
    audit.record("passkey_used", client=client, ip=ip, at=now, detail=passkey.device)
    return client


def _check_assertion(parsed, challenge: bytes, passkey, refuse, now: datetime, *, counter_words: str,
                     unverified_words: str) -> None:
    """Verify a sign-in answer with the kept passkey (a client's or a clinician's), else
    `refuse`. Its counter moves only forwards, also when two answers race: the slower is refused."""
    rp_id, origin = relying_party()
    try:
        verified = verify_authentication_response(
            credential=parsed, expected_challenge=challenge, expected_rp_id=rp_id, expected_origin=origin,
            credential_public_key=base64url_to_bytes(passkey.public_key),
            credential_current_sign_count=passkey.sign_count, require_user_verification=True)
    except WebAuthnException as error:
        counter = "sign count" in str(error)
        refuse("counter" if counter else "unverified", counter_words if counter else unverified_words)
    kept = type(passkey)
    moved = kept.update(sign_count=verified.new_sign_count, last_used_at=now).where(
        (kept.id == passkey.id) & (kept.sign_count == passkey.sign_count)).execute()
    if not moved:
        refuse("counter", "used twice at once")


def _as_json(credential) -> str:
    """py_webauthn parses a JSON string or a dict; we hand it a string, whatever we were given."""
    return credential if isinstance(credential, str) else json.dumps(credential)


def remove(client: Client, passkey_id: int, *, ip: str | None = None) -> bool:
    """The client removes one of their own passkeys; False when it is not theirs (or gone)."""
    passkey = Passkey.get_or_none((Passkey.id == passkey_id) & (Passkey.client == client))
    if passkey is None:
        return False
    with write_transaction():
        Passkey.delete().where(Passkey.id == passkey.id).execute()
        audit.record("passkey_removed", client=client, ip=ip, detail=passkey.device)
    return True


def remove_all(client: Client, *, by) -> int:
    """A clinician removes every passkey of a client (a lost phone)."""
    with write_transaction():
        count = Passkey.delete().where(Passkey.client == client).execute()
        audit.record("passkeys_removed_by_practice", client=client, clinician=by, detail=f"{count} passkey{'' if count == 1 else 's'}")
    return count


def has_passkey(client: Client | None) -> bool:
    return client is not None and client.archived_at is None and Passkey.of(client).exists()


# ---- clinicians: a passkey as the second factor after the password -------------------------
# The same ceremonies, challenges and checks as the clients'; what differs: the clinician is
# known already (the password named them), so the options list their credentials, and the
# challenge is bound to them.

def clinician_handle(clinician) -> bytes:
    return hmac.new(settings().secret_key.encode(), f"passkey-clinician:{clinician.id}".encode(),
                    hashlib.sha256).digest()


def clinician_registration_options(clinician, *, now: datetime | None = None) -> str:
    now = now or utcnow()
    rp_id, _ = relying_party()
    options = generate_registration_options(
        rp_id=rp_id, rp_name=Practice.current().name or "Portico", user_id=clinician_handle(clinician),
        user_name=clinician.email, user_display_name=clinician.name, timeout=TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED, user_verification=UserVerificationRequirement.REQUIRED),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(p.credential_id))
                             for p in ClinicianPasskey.of(clinician)])
    _new_challenge(options.challenge, "clinician_register", None, now, clinician=clinician)
    return options_to_json(options)


def register_clinician(clinician, credential, *, user_agent: str | None = None, ip: str | None = None,
                       now: datetime | None = None) -> ClinicianPasskey:
    now = now or utcnow()
    parsed = _parsed_registration(credential)
    challenge = _take_challenge(parsed.response.client_data_json, "clinician_register", None, now, clinician=clinician)
    verified = _verified_registration(parsed, challenge)
    with write_transaction():
        passkey = _kept(ClinicianPasskey, ClinicianPasskey.of(clinician), parsed, verified, user_agent, now,
                        clinician=clinician)
        audit.record("second_factor_set_up", clinician=clinician, ip=ip, at=now, detail=f"passkey ({passkey.device})")
    return passkey


def clinician_verify_options(clinician, *, now: datetime | None = None) -> str:
    now = now or utcnow()
    rp_id, _ = relying_party()
    options = generate_authentication_options(
        rp_id=rp_id, timeout=TIMEOUT_MS, user_verification=UserVerificationRequirement.REQUIRED,
        allow_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(p.credential_id))
                           for p in ClinicianPasskey.of(clinician)])
    _new_challenge(options.challenge, "clinician_verify", None, now, clinician=clinician)
    return options_to_json(options)


def verify_clinician(clinician, credential, *, ip: str | None = None, now: datetime | None = None) -> ClinicianPasskey:
    """The clinician's own passkey signed this challenge, or PasskeyRefused (audited)."""
    now = now or utcnow()
    try:
        parsed = parse_authentication_credential_json(_as_json(credential))
    except Exception:
        raise PasskeyRefused("malformed") from None
    passkey = ClinicianPasskey.get_or_none((ClinicianPasskey.credential_id == bytes_to_base64url(parsed.raw_id))
                                           & (ClinicianPasskey.clinician == clinician))

    def refuse(reason: str, words: str):
        audit.record("second_factor_failed", clinician=clinician, ip=ip, at=now, detail=f"passkey: {words}")
        raise PasskeyRefused(reason)

    try:
        challenge = _take_challenge(parsed.response.client_data_json, "clinician_verify", None, now,
                                    clinician=clinician)
    except PasskeyRefused as refused:
        refuse(refused.reason, "the request was stale or already used")
    if passkey is None:
        refuse("unknown", "not one of theirs")
    _check_assertion(parsed, challenge, passkey, refuse, now, counter_words="it did not verify",
                     unverified_words="it did not verify")
    audit.record("second_factor_used", clinician=clinician, ip=ip, at=now, detail=f"passkey ({passkey.device})")
    return passkey
