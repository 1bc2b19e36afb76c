"""The ledger: Merkle roots over each run's evidence, the run chain, and Ed25519 signatures.

A run's Merkle root covers the state of its source as of that run: every resource version and
check result valid at the run, each as a leaf, sorted by leaf hash. The tree is RFC 6962's (leaf
hashes prefixed 0x00, node hashes 0x01), so inclusion proofs follow that RFC.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from collector.canonical import canonical, sha256_hex
from collector.held_keys import SigningKey, is_held, open_held

GENESIS = "0" * 64
EMPTY_ROOT = hashlib.sha256(b"").hexdigest()


def resource_leaf(key: str, digest: str) -> bytes:
    enc = encode_basestring
    return hashlib.sha256(f'\x00["resource",{enc(key)},{enc(digest)}]'.encode()).digest()


def result_digest(check_id: str, subject: str, status: str, reason: str,
                  evidence: list[str]) -> str:
    """sha256 of canonical() of [check_id, subject, status, reason, evidence], spelled out:
    this and the leaves below are made once per resource and result on every collection and
    seal, and the encoder's generic walk would cost them a third more."""
    enc = encode_basestring
    return hashlib.sha256(f'[{enc(check_id)},{enc(subject)},{enc(status)},{enc(reason)},'
                          f'[{",".join(map(enc, evidence))}]]'.encode()).hexdigest()


def result_leaf(check_id: str, subject: str, digest: str) -> bytes:
    enc = encode_basestring
    return hashlib.sha256(
        f'\x00["result",{enc(check_id)},{enc(subject)},{enc(digest)}]'.encode()).digest()


_ROOT_SLICE = 65_536  # nodes of a level made at once by _root_in_place()
_SMALL_SORT = 65_536  # leaves up to which a seal sorts them without numpy


class LeafSet:
    """Leaf hashes packed in one buffer: millions of leaves without a Python object each."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def extend(self, leaves: list[bytes]) -> None:
        self._buf += b"".join(leaves)

    def __len__(self) -> int:
        return len(self._buf) // 32

    def sorted_bytes(self) -> bytearray:
        """The leaves in order, packed; the set is empty afterwards (the buffer is handed over,
        not copied: a seal of millions of leaves holds them once)."""
        packed, self._buf = self._buf, bytearray()
        if len(packed) <= _SMALL_SORT * 32:
            # A leaf each as bytes, a few MB at most: most sources are this small, and sorting
            # them costs less than importing numpy (about 50 ms and 13 MB).
            view = bytes(packed)
            packed[:] = b"".join(sorted([view[i:i + 32] for i in range(0, len(view), 32)]))
            return packed
        import numpy as np  # here, not at the top: only large seals need it

        np.frombuffer(packed, dtype="S32").sort()  # numpy compares these like memcmp
        return packed

    def root(self) -> str:
        return _root_in_place(self.sorted_bytes())


def merkle_root(packed: bytes) -> str:
    """RFC 6962 Merkle tree hash over leaf hashes packed 32 bytes apiece."""
    return _root_in_place(bytearray(packed))


def _root_in_place(nodes: bytearray) -> str:
    """merkle_root(), each level written over the one below it: node j of a level is made from
    nodes 2j and 2j+1 below, which no later step of that level reads again. A level is made a
    slice at a time, in one comprehension each (a third faster than a node at a time), so a
    slice's nodes are all that is held besides the buffer."""
    if not nodes:
        return EMPTY_ROOT
    sha256 = hashlib.sha256
    n = len(nodes) // 32
    while n > 1:
        pairs = n // 2
        for start in range(0, pairs, _ROOT_SLICE):
            stop = min(start + _ROOT_SLICE, pairs)
            nodes[start * 32:stop * 32] = b"".join([
                sha256(b"\x01" + nodes[i:i + 64]).digest()
                for i in range(start * 64, stop * 64, 64)])
        if n % 2:  # an odd node is promoted as it is (RFC 6962 shape)
            nodes[pairs * 32:pairs * 32 + 32] = nodes[(n - 1) * 32:n * 32]
        n = pairs + n % 2
        del nodes[n * 32:]
    return nodes.hex()


def inclusion_proof(packed: bytes, index: int) -> list[str]:
    """Audit path for leaf `index` in the tree built by merkle_root()."""
    proof: list[str] = []
    level = [packed[i:i + 32] for i in range(0, len(packed), 32)]
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling].hex())
        nxt = [hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest()
               for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level, index = nxt, index // 2
    return proof


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Iterable[str], root: str) -> bool:
    node, steps = leaf, list(proof)
    while size > 1:
        if index % 2 == 1:
            if not steps:
                return False
            node = hashlib.sha256(b"\x01" + bytes.fromhex(steps.pop(0)) + node).digest()
        elif index + 1 < size:
            if not steps:
                return False
            node = hashlib.sha256(b"\x01" + node + bytes.fromhex(steps.pop(0))).digest()
        index, size = index // 2, (size + 1) // 2
    return not steps and node.hex() == root


def run_header(run: Any, errors: list[dict[str, str]]) -> dict[str, Any]:
    """What the chain hash covers besides the Merkle root: the run's identity and outcome."""
    return {
        "run": run.id,
        "seq": run.seq,
        "source": run.source,
        "kind": run.kind,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "status": run.status,
        "resources": run.resources,
        "results": run.results,
        "errors": sorted(errors, key=lambda e: json.dumps(e, sort_keys=True)),
        "merkle_root": run.merkle_root,
        "prev": run.prev_hash,
        # Only the first run of a new signing key has one: older headers hash as they did.
        **({"key_change": json.loads(run.key_change)}
           if getattr(run, "key_change", None) else {}),
    }


def chain_hash(header: dict[str, Any]) -> str:
    return sha256_hex(canonical(header))


@dataclass(frozen=True)
class Signer:
    """The key that seals runs. `retired` holds the keys it replaced, by key id, for the one
    use left to them: co-signing the first run this key seals (the handover). `path` is the
    key file, which `fresh()` reads again once `annexa key rotate` has replaced it."""

    private: SigningKey
    retired: Mapping[str, SigningKey] = field(default_factory=dict)
    path: Path | None = None
    stamp: int | None = None  # the key file's mtime (ns) when it was read

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def public_hex(self) -> str:
        return public_raw(self.public).hex()

    @property
    def key_id(self) -> str:
        return key_id(self.public)

    def sign(self, chain: str) -> str:
        return self.private.sign(bytes.fromhex(chain)).hex()

    def handover(self, previous_key_id: str, chain: str) -> str | None:
        """The retired key's signature over `chain`, if this signer holds that key."""
        retired = self.retired.get(previous_key_id)
        return retired.sign(bytes.fromhex(chain)).hex() if retired else None

    def fresh(self) -> Signer:
        """This signer, or the one its key file holds now if the file was replaced."""
        if self.path is None:
            return self
        try:
            stamp = self.path.stat().st_mtime_ns
        except OSError:
            return self
        return self if stamp == self.stamp else load_or_create_signer(self.path)


def retired_path(path: Path, key: str) -> Path:
    return path.with_name(f"{path.name}.retired-{key[:16]}")


def _private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load_private(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} holds a {type(key).__name__}, not an Ed25519 private key")
    return key


def rotate_key(path: Path) -> tuple[Signer, Signer]:
    """Make a new key at `path`; the old one is kept beside it as retired, readable by its
    owner only, for the handover. Returns (old, new)."""
    old = load_or_create_signer(path)
    retired = retired_path(path, old.key_id)
    fd = os.open(retired, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(_private_pem(old.private))
    fresh = path.with_name(f".{path.name}.new")
    fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(_private_pem(Ed25519PrivateKey.generate()))
    os.replace(fresh, path)
    return old, load_or_create_signer(path)


def public_raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(public_raw(public)).hexdigest()


def verify_signature(public: Ed25519PublicKey, chain: str, signature: str) -> bool:
    try:
        public.verify(bytes.fromhex(signature), bytes.fromhex(chain))
    except (InvalidSignature, ValueError):
        return False
    return True


def load_or_create_signer(path: Path) -> Signer:
    """The key is made on first use, readable by its owner only, and never overwritten. The
    retired keys beside it (`<file>.retired-<key id>`) come with it, for handovers."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first: use theirs
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(_private_pem(Ed25519PrivateKey.generate()))
    stamp = path.stat().st_mtime_ns
    retired = {}
    for other in sorted(path.parent.glob(f"{path.name}.retired-*")):
        key = _load_private(other)
        retired[key_id(key.public_key())] = key
    return Signer(_load_private(path), retired, path, stamp)


def load_signer(spec: Path | str, retired: Sequence[str] = ()) -> Signer:
    """The signer of `signing_key`: a key file (made on first use), or a key held in a PKCS#11
    token or AWS KMS, with `retired` the held keys it replaced, for the handover."""
    if not is_held(spec):
        return load_or_create_signer(Path(spec))
    old = {}
    for other in retired:
        key = open_held(other)
        old[key_id(key.public_key())] = key
    return Signer(open_held(str(spec)), old)


def public_key_of(spec: Path | str) -> Ed25519PublicKey:
    """The public half of `signing_key`, wherever the key is held."""
    return open_held(spec).public_key() if is_held(spec) else load_public_key(Path(spec))


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A PEM public key, a PEM private key (its public half), or 64 hex characters."""
    raw = path.read_bytes()
    text = raw.decode("ascii", "replace").strip()
    if len(text) == 64 and all(c in "0123456789abcdef" for c in text.lower()):
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(text))
    if b"PRIVATE KEY" in raw:
        private = serialization.load_pem_private_key(raw, password=None)
        if isinstance(private, Ed25519PrivateKey):
            return private.public_key()
    else:
        public = serialization.load_pem_public_key(raw)
        if isinstance(public, Ed25519PublicKey):
            return public
    raise ValueError(f"{path} is not an Ed25519 key")


class KeyHistory:
    """The signing keys of a chain, learnt from the chain itself, run by run in seq order.

    The first key is the first run's; each later key is introduced by a run whose header (in
    its chain hash) names the new key and the key it replaces, and which that retired key
    co-signs. A retired key that signs anything after its handover, or a key that appears
    without one, is a break. `lookup` gives the public key of a key id that the chain does not
    introduce itself (the first key: from the database, or the bundle)."""

    def __init__(self, lookup: Callable[[str], Ed25519PublicKey | None]) -> None:
        self._lookup = lookup
        self.current: str | None = None
        self._public: Ed25519PublicKey | None = None
        self.retired: dict[str, int] = {}  # key id -> seq of the run that retired it
        self.keys: dict[str, Ed25519PublicKey] = {}

    def step(self, seq: int, key: str | None, chain: str, signature: str,
             key_change: Mapping[str, Any] | None, handover: str | None) -> str | None:
        """The problem with this run's signature, or None."""
        if key_change is not None:
            problem = self._handover(seq, key, chain, key_change, handover)
            if problem:
                return problem
        elif self.current is None:
            self._public = self._known(key or "")
            if self._public is None:
                return f"signed by key {key}, whose public key is not known"
            self.current = key
            self.keys[key or ""] = self._public
        elif key != self.current:
            if key in self.retired:
                return (f"signed by key {key}, retired at seq {self.retired[key]}: a retired "
                        "key signed after its rotation")
            return (f"signed by key {key}, but the chain's key is {self.current} (a key "
                    "changed without a handover: use `annexa key rotate`)")
        assert self._public is not None
        if not verify_signature(self._public, chain, signature):
            return f"its signature is not valid for the public key {self.current}"
        return None

    def _known(self, key: str) -> Ed25519PublicKey | None:
        """The public key of `key` from `lookup`, if it is that key (its id is its hash)."""
        public = self._lookup(key)
        return public if public is not None and key_id(public) == key else None

    def _handover(self, seq: int, key: str | None, chain: str, change: Mapping[str, Any],
                  handover: str | None) -> str | None:
        try:
            public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(change["public_key"]))
        except (KeyError, TypeError, ValueError):
            return "its key change names no valid public key"
        if key_id(public) != change.get("key_id") or key != change.get("key_id"):
            return "its key change does not name the key that signed it"
        previous = change.get("previous_key_id")
        if self.current is None:
            self._public = self._known(str(previous))
            self.current = previous
            if self._public is None:
                return f"hands over from key {previous}, whose public key is not known"
            self.keys[str(previous)] = self._public
        if previous != self.current:
            return (f"hands over from key {previous}, but the runs before it were signed by "
                    f"{self.current}")
        assert self._public is not None
        if not handover or not verify_signature(self._public, chain, handover):
            return f"its key change is not co-signed by the retired key {previous}"
        self.retired[str(previous)] = seq
        self.current, self._public = key, public
        self.keys[str(key)] = public
        return None
