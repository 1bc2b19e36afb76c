"""People across Microsoft sources: Entra ID (the authoritative identity provider, its Graph
fake) and Azure (its ARM and Resource Graph fake), collected by the real connectors through
DefaultAzureCredential. A role assignment binds an Entra object id, which the join follows to
its person: a disabled user's Owner binding is a leftover, a binding to an unknown object is an
orphan holding privilege, and an Owner without MFA is named."""

from __future__ import annotations

import json

from collector.demo.emulators import azure as azure_emulator
from collector.demo.emulators.azure_sample import DEV, PROD, guid
from tests.azure_support import azure_server, tenant
from tests.entra_support import entra_fake, entra_server
from tests.helpers import annexa, controls_json, failing_by_check, people_config, people_failing

__all__ = ["azure_server", "entra_fake", "entra_server", "tenant"]  # fixtures



def test_role_assignments_are_judged_as_their_entra_persons_accounts(
        entra_fake, tenant, tmp_path, database_url, capsys):
    ids = {name: entra_fake.user(name)["id"] for name in (
        "frank.leaver", "carol.nomfa", "alice.admin", "dave.secadmin", "grace.guest")}
    bound = {name: tenant.state.role_assignment(sub, azure_emulator.OWNER, ids[name])
             for name, sub in (("frank.leaver", PROD), ("carol.nomfa", PROD),
                               ("alice.admin", DEV))}
    config = people_config(capsys, tmp_path, database_url, [
        {**entra_fake.source(), "schedule": "1h", "max_attempts": 4},
        {**azure_emulator.source(tenant.api, name="azure-test"), "schedule": "1h",
         "backoff": 0, "max_attempts": 4},
    ], {"authoritative": "entra-test"})

    code, out, err = annexa(capsys, config, "people", "--format", "json")
    assert code == 0, err
    people = {p["person"]: p for p in json.loads(out)}
    keys = {name: next(a["key"] for a in people[f"{name}@contoso.example"]["accounts"]
                       if a["source"] == "azure-test") for name in bound}
    assert all(keys[name].lower() == bound[name].lower() for name in bound), keys
    orphans = {k for k in failing_by_check(controls_json(capsys, config))[
        "people.privilege_held_through_known_account"]}
    unknown_owners = {guid(f"prod-owner-{i}") for i in range(2)} | {
        guid(f"dev-owner-{i}") for i in range(4)}
    assert len(orphans) == len(unknown_owners)

    entra_key = {name: f"entra:user:{ident}" for name, ident in ids.items()}
    assert people_failing(capsys, config) == {
        "people.leaver_holds_no_active_account": {keys["frank.leaver"]},
        "people.account_belongs_to_active_person": orphans | {keys["frank.leaver"]},
        # Owners and directory admins without MFA registered, wherever the privilege is held.
        "people.privileged_account_has_mfa": {keys["carol.nomfa"], entra_key["dave.secadmin"],
                                              entra_key["grace.guest"]},
        "people.privilege_held_through_known_account": orphans,
    }
    assert annexa(capsys, config, "verify")[0] == 0
