"""Signing keys that never leave where they are held: a PKCS#11 token (an HSM, a smart card,
SoftHSM) named by an RFC 7512 URI, or an AWS KMS key named by its ARN. Each signs as a file's
key does (Ed25519 over the chain hash), and gives its public half, which is all the ledger and
its verifiers need.

    pkcs11:token=annexa;object=annexa-signing?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/annexa/pin
    arn:aws:kms:eu-west-1:123456789012:key/0f6c...     (key spec ECC_NIST_EDWARDS25519)
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

# DER of an OCTET STRING that holds a 32-byte point: how tokens give CKA_EC_POINT.
_OCTET_STRING_32 = b"\x04\x20"
# The OID of Ed25519 (RFC 8410), the curve a token's EdDSA key must be on.
ED25519_OID = "1.3.101.112"


class KeyUnusable(ValueError):
    """The named key cannot sign for the ledger: the reason names the key and the cause."""


class SigningKey(Protocol):
    def sign(self, data: bytes) -> bytes: ...

    def public_key(self) -> Ed25519PublicKey: ...


def is_held(spec: object) -> bool:
    """A key named by a URI or ARN rather than a file."""
    return isinstance(spec, str) and spec.startswith(("pkcs11:", "arn:aws:kms:"))


# Held keys opened by this process, by (pid, URI): a PKCS#11 login holds for every session of
# a process, so a key is opened once per process (a forked pool process opens its own).
_OPENED: dict[tuple[int, str], SigningKey] = {}
_OPENING = threading.Lock()
# The PIN each token was logged in with, by (pid, module, token label).
_LOGINS: dict[tuple[int, str | None, str | None], str | None] = {}


def open_held(spec: str) -> SigningKey:
    with _OPENING:
        key = _OPENED.get((os.getpid(), spec))
        if key is None:
            key = Pkcs11Key(spec) if spec.startswith("pkcs11:") else KmsKey(spec)
            key.public_key()  # fails now, naming the key, or the key is usable
            _OPENED[(os.getpid(), spec)] = key
        return key


def parse_pkcs11_uri(uri: str) -> tuple[dict[str, str], dict[str, str]]:
    """(path attributes, query attributes) of an RFC 7512 URI, percent-decoded."""
    body = uri.removeprefix("pkcs11:")
    path, _, query = body.partition("?")
    attributes = {}
    for part in filter(None, path.split(";")):
        name, sep, value = part.partition("=")
        if not sep:
            raise KeyUnusable(f"{uri}: {part!r} is not name=value")
        attributes[name] = unquote(value)
    return attributes, dict(parse_qsl(query.replace(";", "&"), keep_blank_values=True))


class Pkcs11Key:
    """An Ed25519 private key in a PKCS#11 token, used through python-pkcs11 (CKM_EDDSA). One
    session per process, opened on first use; signing is serialised, as tokens require of a
    session."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        path, query = parse_pkcs11_uri(uri)
        self.token_label = path.get("token")
        self.object_label = path.get("object")
        self.module = query.get("module-path")
        if not self.token_label or not self.object_label or not self.module:
            raise KeyUnusable(f"{self._shown()}: a signing key's URI names its token=, object= "
                              "and ?module-path= (the PKCS#11 library)")
        self._pin = self._read_pin(query)
        self._lock = threading.Lock()
        self._session: Any = None
        self._private: Any = None
        self._public: Ed25519PublicKey | None = None

    def _shown(self) -> str:
        """The URI without a PIN that it may carry."""
        return self.uri.split("pin-value=")[0].rstrip("?&;")

    def _read_pin(self, query: dict[str, str]) -> str | None:
        if "pin-value" in query:
            return query["pin-value"]
        source = query.get("pin-source")
        if source is None:
            return None
        try:
            return Path(source.removeprefix("file:")).read_text().strip()
        except OSError as exc:
            raise KeyUnusable(f"{self._shown()}: pin-source: {exc}") from None

    def _open(self) -> None:
        try:
            import pkcs11
            from pkcs11 import Attribute, KeyType, ObjectClass
        except ImportError:
            raise KeyUnusable(f"{self._shown()}: PKCS#11 keys need python-pkcs11 "
                              "(pip install 'annexa[hsm]')") from None
        try:
            token = pkcs11.lib(self.module).get_token(token_label=self.token_label)
            session = self._login(pkcs11, token)
            private = session.get_key(object_class=ObjectClass.PRIVATE_KEY,
                                      key_type=KeyType.EC_EDWARDS, label=self.object_label)
            public = session.get_key(object_class=ObjectClass.PUBLIC_KEY,
                                     key_type=KeyType.EC_EDWARDS, label=self.object_label)
            point = bytes(public[Attribute.EC_POINT])
        except (pkcs11.PKCS11Error, RuntimeError, OSError) as exc:
            raise KeyUnusable(f"{self._shown()}: {type(exc).__name__} {exc}".rstrip()) from None
        if point.startswith(_OCTET_STRING_32) and len(point) == 34:
            point = point[2:]
        if len(point) != 32:
            raise KeyUnusable(f"{self._shown()}: the key is not on Ed25519 (a {len(point)}-byte "
                              "point)")
        self._session, self._private = session, private
        self._public = Ed25519PublicKey.from_public_bytes(point)

    def _login(self, pkcs11: Any, token: Any) -> Any:
        """A session logged in with our PIN. A login holds for all of a process's sessions
        with the token: one already made with this PIN is used, one made with another is not."""
        place = (os.getpid(), self.module, self.token_label)
        try:
            session = token.open(user_pin=self._pin)
        except pkcs11.UserAlreadyLoggedIn:
            if _LOGINS.get(place) != self._pin:
                raise KeyUnusable(f"{self._shown()}: the token is logged in with another PIN "
                                  "in this process") from None
            return token.open()
        _LOGINS[place] = self._pin
        return session

    def public_key(self) -> Ed25519PublicKey:
        with self._lock:
            if self._public is None:
                self._open()
            assert self._public is not None
            return self._public

    def sign(self, data: bytes) -> bytes:
        from pkcs11 import Mechanism, PKCS11Error

        public = self.public_key()
        with self._lock:
            try:
                signature = bytes(self._private.sign(data, mechanism=Mechanism.EDDSA))
            except PKCS11Error as exc:
                raise KeyUnusable(f"{self._shown()}: signing failed: {type(exc).__name__}") \
                    from None
        return _checked(self._shown(), public, signature, data)


class KmsKey:
    """An AWS KMS key of spec ECC_NIST_EDWARDS25519, signing with ED25519_SHA_512 over the raw
    message (pure Ed25519, as the file keys sign). boto3's usual credentials and region; the
    ARN names the region."""

    SPEC = "ECC_NIST_EDWARDS25519"
    ALGORITHM = "ED25519_SHA_512"

    def __init__(self, arn: str) -> None:
        parts = arn.split(":")
        if len(parts) < 6 or not parts[5].startswith(("key/", "alias/")):
            raise KeyUnusable(f"{arn}: not a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)")
        self.arn, self.region = arn, parts[3]
        self._public: Ed25519PublicKey | None = None
        self._client: Any = None

    def _kms(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("kms", region_name=self.region)
        return self._client

    def public_key(self) -> Ed25519PublicKey:
        if self._public is not None:
            return self._public
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self._kms().get_public_key(KeyId=self.arn)
        except (BotoCoreError, ClientError) as exc:
            raise KeyUnusable(f"{self.arn}: {exc}") from None
        spec = answer.get("KeySpec") or answer.get("CustomerMasterKeySpec")
        if spec != self.SPEC or answer.get("KeyUsage") != "SIGN_VERIFY":
            raise KeyUnusable(f"{self.arn}: a {spec} key for {answer.get('KeyUsage')}; the "
                              f"ledger signs with {self.SPEC} keys for SIGN_VERIFY (Ed25519)")
        public = serialization.load_der_public_key(answer["PublicKey"])
        if not isinstance(public, Ed25519PublicKey):
            raise KeyUnusable(f"{self.arn}: its public key is not Ed25519")
        self._public = public
        return public

    def sign(self, data: bytes) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        public = self.public_key()
        try:
            signature = self._kms().sign(KeyId=self.arn, Message=data, MessageType="RAW",
                                         SigningAlgorithm=self.ALGORITHM)["Signature"]
        except (BotoCoreError, ClientError) as exc:
            raise KeyUnusable(f"{self.arn}: signing failed: {exc}") from None
        return _checked(self.arn, public, signature, data)


def _checked(name: str, public: Ed25519PublicKey, signature: bytes, data: bytes) -> bytes:
    """A signature the key's own public half verifies: a token that answers wrongly must not
    seal runs that verify would later call forged."""
    try:
        public.verify(signature, data)
    except InvalidSignature:
        raise KeyUnusable(f"{name}: the signature it made does not verify against its public "
                          "key") from None
    return signature
