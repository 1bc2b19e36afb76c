"""Okta policies, each judged with its rules: the global session (sign-on) policy requires MFA
and bounds idle sessions, authentication policies require two factors, the password policy is
strong, and the authenticator enrolment policy requires a factor beyond the password. A policy
of another type is not applicable; an inactive policy applies to nobody."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from checks.registry import check
from collector.model import Verdict, errored, failed, not_applicable, passed

RULES = "rules"
MIN_LENGTH, MIN_HISTORY, MAX_ATTEMPTS = 12, 5, 10
MAX_IDLE_MINUTES = 120
# Authenticators that prove nothing beyond what the password proves, or are phishable by SIM
# swap: enrolling them alone is not MFA enrolment.
KNOWLEDGE = frozenset({"okta_password", "okta_email", "security_question"})


def _of_type(policy: dict[str, Any], kind: str) -> Verdict | None:
    if policy["type"] != kind:
        return not_applicable(f"a {policy['type']} policy")
    if policy["status"] != "ACTIVE":
        return not_applicable(f"policy is {policy['status']}")
    return None


def _allowing(policy: dict[str, Any], action: str) -> list[dict[str, Any]]:
    """The active rules that let someone in (a DENY rule needs no factor)."""
    rules = policy[RULES]
    if not isinstance(rules, list):
        raise ValueError("the policy's rules were not returned")
    return [r for r in rules if r["status"] == "ACTIVE"
            and r["actions"][action]["access"] == "ALLOW"]


def _every_rule(policy: dict[str, Any], action: str,
                judge: Callable[[dict[str, Any]], str | None], ok: str) -> Verdict:
    """Fail naming each allowing rule that `judge` finds a problem with."""
    allowing = _allowing(policy, action)
    if not allowing:
        return not_applicable("no active rule allows sign-in")
    problems = [f"rule {r['name']!r} {problem}" for r in allowing
                if (problem := judge(r)) is not None]
    if problems:
        return failed("; ".join(problems))
    return passed(f"{len(allowing)} allowing rule(s): {ok}")


@check(
    "okta.policy.sign_on_requires_mfa",
    resource="okta.policy",
    title="Global session policy rules that allow sign-in require MFA",
    controls={
        "A.8.5": "a rule that lets users in with a password alone makes sign-in rest on one "
                 "factor",
        "A.5.17": "the policy decides which authentication information a session needs",
    },
    severity="high",
    remediation="In Security > Global Session Policy, set 'Secondary factor: required' "
                "(Establish the user session with a password and any factor) on every rule "
                "that allows access.",
    needs=(RULES,),
)
def sign_on_requires_mfa(policy: dict[str, Any]) -> Verdict:
    def judge(rule: dict[str, Any]) -> str | None:
        return None if rule["actions"]["signon"].get("requireFactor") is True else (
            "allows sign-in without a second factor")
    return _of_type(policy, "OKTA_SIGN_ON") or _every_rule(policy, "signon", judge,
                                                           "a second factor required")


@check(
    "okta.policy.session_idle_bounded",
    resource="okta.policy",
    title=f"Sessions expire after at most {MAX_IDLE_MINUTES} idle minutes",
    controls={
        "A.8.5": "a session left open indefinitely on an unattended device authenticates "
                 "whoever sits down at it, with nobody having signed in",
    },
    severity="medium",
    remediation=f"Set 'Expire session after user has been idle' to {MAX_IDLE_MINUTES} minutes "
                "or less on every allowing rule of the global session policy.",
    needs=(RULES,),
)
def session_idle_bounded(policy: dict[str, Any]) -> Verdict:
    def judge(rule: dict[str, Any]) -> str | None:
        idle = rule["actions"]["signon"]["session"]["maxSessionIdleMinutes"]
        if not isinstance(idle, int) or isinstance(idle, bool):
            raise ValueError(f"maxSessionIdleMinutes of rule {rule['name']!r} is {idle!r}")
        return None if 0 < idle <= MAX_IDLE_MINUTES else f"keeps idle sessions {idle} minutes"
    return _of_type(policy, "OKTA_SIGN_ON") or _every_rule(
        policy, "signon", judge, f"idle sessions end within {MAX_IDLE_MINUTES} minutes")


@check(
    "okta.policy.authentication_requires_mfa",
    resource="okta.policy",
    title="Authentication policy rules that allow access require two factors",
    controls={
        "A.8.5": "an app sign-in rule satisfied by one factor lets a stolen password open "
                 "the apps the policy covers",
        "A.8.3": "the authentication policy is how access to each app is restricted",
    },
    severity="high",
    remediation="In Security > Authentication Policies, set 'User must authenticate with: "
                "Any 2 factor types' (or a phishing-resistant authenticator) on every rule "
                "that allows access, the catch-all rule included.",
    needs=(RULES,),
)
def authentication_requires_mfa(policy: dict[str, Any]) -> Verdict:
    def judge(rule: dict[str, Any]) -> str | None:
        method = rule["actions"]["appSignOn"]["verificationMethod"]
        if method["type"] != "ASSURANCE":
            raise ValueError(f"rule {rule['name']!r} verifies by {method['type']}, which this "
                             "check does not judge")
        mode = method["factorMode"]
        return None if mode == "2FA" else f"accepts {mode}"
    return _of_type(policy, "ACCESS_POLICY") or _every_rule(policy, "appSignOn", judge,
                                                            "two factors required")


@check(
    "okta.policy.password_strong",
    resource="okta.policy",
    title=f"Password policies require {MIN_LENGTH}+ characters, remember {MIN_HISTORY}+ "
          f"passwords and lock out after at most {MAX_ATTEMPTS} attempts",
    controls={
        "A.5.17": "the rules for passwords as authentication information: their quality, "
                  "their reuse, and what guessing them costs",
        "A.8.5": "a lockout bounds password guessing against the sign-in page",
    },
    severity="high",
    remediation=f"In Security > Authenticators > Password, edit each policy: minimum length "
                f"{MIN_LENGTH}, enforce password history of {MIN_HISTORY} or more, lock out "
                f"after {MAX_ATTEMPTS} or fewer unsuccessful attempts.",
)
def password_strong(policy: dict[str, Any]) -> Verdict:
    verdict = _of_type(policy, "PASSWORD")
    if verdict is not None:
        return verdict
    # The connector keeps Okta's `settings.password` under this name (the store redacts any
    # field called password).
    settings = policy["settings"]["passwordPolicy"]
    length = settings["complexity"]["minLength"]
    history = settings["age"]["historyCount"]
    attempts = settings["lockout"]["maxAttempts"]
    for name, value in (("minLength", length), ("historyCount", history),
                        ("maxAttempts", attempts)):
        if not isinstance(value, int) or isinstance(value, bool):
            return errored(f"{name} is {value!r}, not a number")
    problems = []
    if length < MIN_LENGTH:
        problems.append(f"minimum length {length} (< {MIN_LENGTH})")
    if history < MIN_HISTORY:
        problems.append(f"history of {history} (< {MIN_HISTORY})")
    if not 0 < attempts <= MAX_ATTEMPTS:
        problems.append("no lockout" if attempts == 0 else f"lockout after {attempts} attempts")
    if problems:
        return failed("; ".join(problems))
    return passed(f"length {length}, history {history}, lockout after {attempts} attempts")


def _required(policy: dict[str, Any]) -> list[str]:
    """The factors or authenticators whose enrolment the policy requires."""
    settings = policy["settings"]
    if settings.get("type", "FACTORS") == "AUTHENTICATORS":
        return [a["key"] for a in settings["authenticators"]
                if a["enroll"]["self"] == "REQUIRED"]
    return [name for name, factor in settings["factors"].items()
            if factor["enroll"]["self"] == "REQUIRED"]


@check(
    "okta.policy.mfa_enrollment_required",
    resource="okta.policy",
    title="Authenticator enrolment policies require a factor beyond the password",
    controls={
        "A.5.17": "allocating authentication information includes the second factor that "
                  "sign-in will ask for",
        "A.8.5": "users who never enrol a second factor cannot be made to use one",
    },
    severity="high",
    remediation="In Security > Authenticators > Enrollment, set Okta Verify or a security "
                "key to Required in every policy, with a rule that prompts at sign-in.",
    needs=(RULES,),
)
def mfa_enrollment_required(policy: dict[str, Any]) -> Verdict:
    verdict = _of_type(policy, "MFA_ENROLL")
    if verdict is not None:
        return verdict
    strong = [key for key in _required(policy) if key not in KNOWLEDGE]
    if not strong:
        return failed("no authenticator beyond the password (or email, security question) is "
                      "required")
    prompting = [r for r in policy[RULES] if r["status"] == "ACTIVE"
                 and r["actions"]["enroll"]["self"] != "NEVER"]
    if not prompting:
        return failed(f"{', '.join(strong)} required, but no active rule prompts enrolment")
    return passed(f"required: {', '.join(strong)}")
