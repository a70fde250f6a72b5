//! The policy folder's decision fixtures, run against the schema-validated policies.

use zygo::authz::{PolicyBundle, fixtures};

use crate::helpers::policies_dir;

#[test]
fn every_decision_fixture_holds() {
    let bundle = PolicyBundle::load(&policies_dir()).expect("policies validate");
    let outcomes = fixtures::run(&bundle, &policies_dir().join("tests")).expect("fixtures read");
    assert!(
        outcomes.len() >= 80,
        "the role x action x tenant matrix is covered"
    );
    let failures: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.passed())
        .map(|o| {
            format!(
                "{}: {:?} {} {} {:?}: expected {:?}, got {:?} (policies {:?}, errors {:?})",
                o.file.display(),
                o.case.role,
                o.case.action,
                o.case.resource,
                o.case.place,
                o.case.expect,
                o.actual,
                o.reasons,
                o.errors
            )
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_role_hierarchy_is_data_in_the_policy_folder() {
    let bundle = PolicyBundle::load(&policies_dir()).unwrap();
    let roles: Vec<_> = bundle.roles().iter().cloned().collect();
    assert_eq!(roles, vec!["Admin", "Editor", "Viewer"]);
    let mut ids = bundle.policy_ids();
    ids.sort();
    assert_eq!(
        ids,
        vec![
            "admins-ask-for-members",
            "admins-manage-members",
            "admins-read-audit",
            "admins-share-flows",
            "admins-write-flows",
            "anyone-creates-tenants",
            "confidential-flows",
            "editors-create-flows",
            "editors-write-own-or-shared-flows",
            "members-ask-for-themselves",
            "members-read-tenant",
            "owners-share-flows",
            "read-only-tokens-mint-read-only-tokens",
            "read-only-tokens-never-change-the-account",
            "read-only-tokens-never-write",
            "read-only-tokens-revoke-only-their-family",
            "shared-editors-update-flows",
            "shared-flows-readable",
            "tenant-boundary",
            "users-manage-own-credentials",
            "viewers-read-flows"
        ]
    );
}

#[test]
fn a_broken_policy_is_reported_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(policies_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    let flows = dir.path().join("flows.cedar");
    let text = std::fs::read_to_string(&flows).unwrap();
    std::fs::write(&flows, text.replace("\"ReadFlow\"]", "\"ReadFlows\"]")).unwrap();
    std::fs::write(
        dir.path().join("extra.cedar"),
        "// no id\npermit (principal, action, resource);\n",
    )
    .unwrap();
    let err = PolicyBundle::load(dir.path()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("flows.cedar:6:41: for policy `viewers-read-flows`, unrecognized action"),
        "{text}"
    );
    assert!(
        text.contains("extra.cedar:2:1: policy has no @id"),
        "{text}"
    );
}

#[test]
fn action_groups_in_the_schema_are_honoured() {
    use uuid::Uuid;
    use zygo::authz::{Action, Query, Resource};
    use zygo::store::{TenantId, UserId};

    let dir = tempfile::tempdir().unwrap();
    let policies = crate::helpers::copy_policies(dir.path());
    let schema = std::fs::read_to_string(policies.join("schema.cedarschema")).unwrap();
    let schema = schema
        .replace(
            "  action CreateFlow appliesTo",
            "  action FlowWrites;\n  action CreateFlow in [FlowWrites] appliesTo",
        )
        .replace(
            "  action DeleteFlow appliesTo",
            "  action DeleteFlow in [FlowWrites] appliesTo",
        );
    std::fs::write(policies.join("schema.cedarschema"), schema).unwrap();
    std::fs::write(
        policies.join("groups.cedar"),
        "// Viewers may do every flow write the group names.\n@id(\"viewers-write-by-group\")\npermit (\n  principal in Zygo::Role::\"Viewer\",\n  action in Zygo::Action::\"FlowWrites\",\n  resource\n);\n",
    )
    .unwrap();
    let bundle = PolicyBundle::load(&policies).expect("validates");
    let tenant = TenantId(Uuid::new_v4());
    let ask = |action| {
        bundle.decide(&Query {
            user: UserId(Uuid::new_v4()),
            role: Some("Viewer"),
            action,
            tenant,
            resource: Resource::Flow(Uuid::new_v4()),
            resource_tenant: tenant,
            auth: zygo::authz::AuthContext::SESSION,
            flow: None,
        })
    };
    let delete = ask(Action::DeleteFlow);
    assert!(delete.allowed, "{delete:?}");
    assert_eq!(delete.reasons, vec!["viewers-write-by-group"]);
    assert!(
        !ask(Action::UpdateFlow).allowed,
        "UpdateFlow is not in the group"
    );
}
