"""What a secret looks like: the names of fields that hold one, and secret-shaped values
inside any string, whatever field holds them (cloud keys, tokens, private keys, passwords in
URLs, `password=...` assignments), of which only the secret part is replaced.

The token formats follow two maintained detectors, rewritten here rather than copied:
gitleaks' default rule set (config/gitleaks.toml: aws-access-token, private-key, github-pat,
github-oauth, github-app-token, github-refresh-token, github-fine-grained-pat, gitlab-pat,
slack-*-token, slack-webhook-url, stripe-access-token, jwt, gcp-api-key, npm-access-token,
pypi-upload-token, sendgrid-api-token, openai-api-key, anthropic-api-key, hashicorp-tf-api-token,
vault-service-token, digitalocean-pat, azure-ad-client-secret) and Yelp's detect-secrets
plugins (aws.py, basic_auth.py, azure_storage_key.py, private_key.py, slack.py, stripe.py,
jwt.py, keyword.py).

Speed: `candidate()` tells, from one Aho-Corasick pass over a resource's JSON text, whether
anything can be redacted at all; most resources go no further. In a resource that can, each
string passes the same test, and only a string that passes runs the patterns."""

from __future__ import annotations

import re
from functools import lru_cache

from ahocorasick_rs import AhoCorasick

REDACTED = "[REDACTED]"

# Field names (lower-cased, without _ and -) whose values are secrets wherever they appear.
_SECRET_NAMES = frozenset({
    "userdata", "environment", "variables", "credentials", "apikey", "clientsecret",
    "connectionstring", "privatekey", "secret", "secretaccesskey", "sessiontoken", "password",
    "masteruserpassword", "accesstoken", "refreshtoken", "sastoken", "token", "passphrase",
    "secrettext", "secretstring", "secretbinary", "secretvalue",
})
# "token" ends API_TOKEN and github_token as well as SessionToken; it also ends NextToken and
# ClientToken, which are no secrets but no evidence either: no check reads them. Names that
# only begin with a secret word (PasswordPolicy, token_type, SecretArn, KeyName, KmsKeyId,
# private_key_id, MinimumPasswordLength) are no secrets.
_SECRET_SUFFIXES = ("password", "passwd", "pwd", "passphrase", "secret", "secretkey",
                    "accesskey", "accountkey", "masterkey", "privatekey", "apikey",
                    "connectionstring", "token")
# Identifiers (lower-cased, without _ - and .) that name a secret in `name=value` or
# `name: value` inside a string, e.g. DB_PASSWORD=..., aws_secret_access_key = ..., "token": ...
INLINE_SUFFIXES = ("password", "passwd", "pwd", "passphrase", "secret", "token", "apikey",
                   "accesskey", "secretkey", "privatekey", "accountkey", "connectionstring")


@lru_cache(maxsize=8192)
def is_secret_name(name: str) -> bool:
    plain = name.lower().replace("_", "").replace("-", "")
    return plain in _SECRET_NAMES or plain.endswith(_SECRET_SUFFIXES)


def norm(text: str) -> str:
    return text.lower().replace("_", "").replace("-", "").replace(".", "")


_AWS_ID = r"(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}"
# A 40-character AWS secret is random base64: upper, lower and a digit or symbol (a hex digest
# or a word is none).
_AWS_SECRET = (r"(?=[A-Za-z0-9/+]{0,39}[A-Z])(?=[A-Za-z0-9/+]{0,39}[a-z])"
               r"(?=[A-Za-z0-9/+]{0,39}[0-9/+])[A-Za-z0-9/+]{40}")
_B64URL = r"[A-Za-z0-9_-]"

# (markers, patterns): a string holds a pattern's match only if it holds one of the markers,
# as written. Each pattern's group "s" is the secret; the rest of a match stays.
_RULES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    # PEM and PuTTY private keys, multi-line; the armour stays so the evidence shows that a
    # key was there. An unterminated block is redacted to the end of the string.
    (("PRIVATE KEY",),
     (r"-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----(?P<s>[\s\S]*?)"
      r"(?:-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----|\Z)",)),
    (("PuTTY-User-Key-File",), (r"PuTTY-User-Key-File-\d: [^\r\n]*(?P<s>[\s\S]*)",)),
    # scheme://user:password@host: the URL stays, the password goes.
    (("://",), (r"(?i)\b[a-z][a-z0-9+.-]{0,30}://[^\s/?#@\"'<>:]*:(?P<s>[^\s/?#@\"'<>]+)@",)),
    # An access key id, and a secret key right after one (a CSV line, `aws configure`).
    (("A3T", "AKIA", "ASIA", "ABIA", "ACCA"),
     (rf"\b{_AWS_ID}\b[\s,;:|\"'=\\]{{1,6}}(?P<s>{_AWS_SECRET})(?![A-Za-z0-9/+=])",
      rf"\b(?P<s>{_AWS_ID})\b")),
    (("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), (r"\b(?P<s>gh[pousr]_[A-Za-z0-9]{36,255})\b",)),
    (("github_pat_",), (r"\b(?P<s>github_pat_[A-Za-z0-9_]{22,255})",)),
    (("glpat-",), (r"\b(?P<s>glpat-[A-Za-z0-9_-]{20,})",)),
    (("xoxa-", "xoxb-", "xoxp-", "xoxo-", "xoxs-", "xoxr-"),
     (r"\b(?P<s>xox[abposr]-[A-Za-z0-9-]{10,250})",)),
    (("xapp-",), (r"\b(?P<s>xapp-\d-[A-Za-z0-9]+-\d+-[A-Za-z0-9]+)",)),
    (("hooks.slack.com/",),
     (r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<s>[A-Za-z0-9+/_-]{20,})",)),
    (("k_live_", "k_test_", "k_prod_"),
     (r"\b(?P<s>[sr]k_(?:live|test|prod)_[A-Za-z0-9]{10,247})\b",)),
    (("whsec_",), (r"\b(?P<s>whsec_[A-Za-z0-9+/=]{24,})",)),
    # JSON Web Tokens (and JWE): base64url parts whose header and payload are JSON objects.
    (("eyJ",),
     (rf"\b(?P<s>eyJ{_B64URL}{{8,}}\.ey{_B64URL}{{8,}}\.{_B64URL}*(?:\.{_B64URL}*){{0,2}})",)),
    (("AIza",), (r"\b(?P<s>AIza[0-9A-Za-z_-]{35})",)),
    (("GOCSPX-",), (r"\b(?P<s>GOCSPX-[0-9A-Za-z_-]{28})",)),
    (("ya29.",), (r"\b(?P<s>ya29\.[0-9A-Za-z_-]{20,})",)),
    (("npm_",), (r"\b(?P<s>npm_[A-Za-z0-9]{36})\b",)),
    (("pypi-AgE",), (r"\b(?P<s>pypi-AgE[A-Za-z0-9_-]{50,})",)),
    (("SG.",), (r"\b(?P<s>SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43})\b",)),
    (("sk-",), (r"\b(?P<s>sk-(?:ant-(?:api|admin)\d\d-[A-Za-z0-9_-]{80,}|[A-Za-z0-9_-]*T3BlbkFJ"
                r"[A-Za-z0-9_-]+))",)),
    ((".atlasv1.",), (r"\b(?P<s>[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60,})",)),
    (("hvs.",), (r"\b(?P<s>hvs\.[A-Za-z0-9_-]{24,})",)),
    (("dop_v1_",), (r"\b(?P<s>dop_v1_[a-f0-9]{64})\b",)),
    # Entra ID client secrets: three characters, a digit, "Q~", then 31 to 34 more.
    (("Q~",), (r"(?<![A-Za-z0-9_~.-])(?P<s>[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34})"
               r"(?![A-Za-z0-9_~.-])",)),
)
# Whatever the case, so with markers in norm() text: Azure storage and Service Bus connection
# strings, SAS and presigned URLs.
_CASELESS_MARKERS = ("accountkey=", "sharedaccesskey=", "sharedaccesssignature=", "sig=",
                     "xamzsignature=", "xamzsecuritytoken=", "xgoogsignature=")
_CASELESS = re.compile(
    r"(?i)(?<![\w-])(?:AccountKey|SharedAccessKey|SharedAccessSignature|sig|x-amz-signature|"
    r"x-amz-security-token|x-goog-signature)=(?P<s>[^;&\s\"'<>]+)")

# One Aho-Corasick pass finds every marker (a regular expression of the same alternatives
# took ten times as long as the rest of the fast path).
_MARKER_RULE = [(marker, rule) for rule, (markers, _) in enumerate(_RULES) for marker in markers]
_RAW_SCAN = AhoCorasick([marker for marker, _ in _MARKER_RULE])
_PATTERNS = tuple(tuple(re.compile(p) for p in patterns) for _, patterns in _RULES)
_URL_RULE = next(i for i, (markers, _) in enumerate(_RULES) if markers == ("://",))
_USERINFO = re.compile(r"://[^\s/?#@\"'<>:]*:[^\s/?#@\"'<>]+@")
# In norm() text: the caseless markers; a secret name closing a JSON string (a field's name,
# or a tag's label naming the sibling value); an identifier of INLINE_SUFFIXES, which counts
# only if an assignment follows (a quote before it may be escaped, once in JSON text, more
# often in JSON held in a string).
_NAME_ENDS = tuple(f'{name}"' for name in sorted(_SECRET_NAMES | set(_SECRET_SUFFIXES)))
_LOWER_SCAN = AhoCorasick((*_CASELESS_MARKERS, *_NAME_ENDS, *INLINE_SUFFIXES))
_NAMES_FROM = len(_CASELESS_MARKERS)
_SUFFIX_FROM = _NAMES_FROM + len(_NAME_ENDS)
_ASSIGNS = re.compile(r"\\*[\"']? *[:=]")


class _Found:
    """What one scan of a text found: the rules to run; whether a caseless marker, a secret
    name closing a string, or an assignment to a secret name is there."""

    __slots__ = ("assignment", "caseless", "name", "rules")

    def __init__(self, text: str) -> None:
        self.rules = {_MARKER_RULE[i][1] for i, _, _ in _RAW_SCAN.find_matches_as_indexes(text)}
        if _URL_RULE in self.rules and _USERINFO.search(text) is None:
            self.rules.discard(_URL_RULE)
        self.caseless = self.name = self.assignment = False
        normed = norm(text)
        for index, _, end in _LOWER_SCAN.find_matches_as_indexes(normed, overlapping=True):
            if index < _NAMES_FROM:
                self.caseless = True
            elif index < _SUFFIX_FROM:
                self.name = True
            elif not self.assignment:
                self.assignment = _ASSIGNS.match(normed, end) is not None

    def __bool__(self) -> bool:
        return bool(self.rules) or self.caseless or self.name or self.assignment


def candidate(text: str) -> bool:
    """False only when neither redact_text() nor a secret-named field can change `text`: a
    string, or the JSON text of a whole resource (whose escapes keep every marker intact).

    "password_enabled" and "MinimumPasswordLength" contain a secret word and are no secrets:
    every IAM user's credential report has such names, and telling them apart here spares
    a walk of the whole resource."""
    return bool(_Found(text))


@lru_cache(maxsize=4096)
def _secret_identifier(name: str) -> bool:
    return norm(name).endswith(INLINE_SUFFIXES)


# Values that an assignment to a secret name may hold and that are no secrets: flags such as
# AllowUsersToChangePassword: true inside a JSON document, placeholders already redacted.
_NOT_SECRETS = frozenset({"true", "false", "null", "none", "", REDACTED.lower()})


def _keep(match: re.Match[str]) -> str:
    """`match` with only its group "s", the secret, replaced by the marker."""
    start, end = match.span("s")
    whole = match.group(0)
    base = match.start(0)
    return f"{whole[:start - base]}{REDACTED}{whole[end - base:]}"


# name=value, name: value, "name": "value": a secret when the name ends like a secret's. A
# colon with neither a quote before it nor a space after it separates no assignment: ARNs
# (arn:aws:secretsmanager:...:secret:name) and host:port pairs are no secrets.
_ASSIGNMENT = re.compile(
    r"(?<![\w.])(?P<name>[A-Za-z][\w.-]{0,80})(?P<sep>\\?[\"'] *[:=] *| *= *| *: +)"
    r"(?P<s>\[REDACTED\]|\\?\"(?:[^\"\\\n]|\\[^\"])*\\?\"|'[^'\n]*'|[^\s\"',;&<>\\)\]}]+)")


def _assigned_value(value: str) -> str:
    """The marker in place of `value`, keeping the quotes around it."""
    quote = value[:2] if value.startswith("\\") else value[:1]
    if quote in ('"', "'", '\\"') and value.endswith(quote) and len(value) > 2 * len(quote):
        return f"{quote}{REDACTED}{quote}"
    return REDACTED


def _redact_assignments(text: str) -> str:
    """A match whose name is no secret's gives way after its name, so that what it took for
    a value (the rest of a URL, say: https://x/?pwd=...) is looked at too."""
    parts: list[str] = []
    done = at = 0
    while (match := _ASSIGNMENT.search(text, at)) is not None:
        value = match.group("s")
        if (_secret_identifier(match.group("name"))
                and value.strip("\"'\\").lower() not in _NOT_SECRETS):
            parts += (text[done:match.start("s")], _assigned_value(value))
            done = at = match.end()
        else:
            at = match.end("name")
    return "".join((*parts, text[done:])) if parts else text


def redact_text(text: str) -> str:
    """`text` with every secret-shaped part replaced by REDACTED; the same object when none."""
    found = _Found(text)
    out = text
    for rule in sorted(found.rules):
        for pattern in _PATTERNS[rule]:
            out = pattern.sub(_keep, out)
    if found.caseless:
        out = _CASELESS.sub(_keep, out)
    if found.assignment:
        out = _redact_assignments(out)
    return text if out == text else out
