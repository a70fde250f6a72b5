//! Published policy versions as policy sets: a stored version is turned back into files and goes
//! through the very validation a folder does ([`PolicyBundle::from_files`]); a folder becomes a
//! version to store; and the gate a publish passes before new access goes live.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::analysis::{self, PolicyDiff};
use super::fixtures;
use super::policies::{Diagnostic, LoadError, PolicyBundle, PolicyFiles};
use crate::store::policy_versions::{NewVersion, Version};

/// The files of a stored version; diagnostics name them under `version N/`.
pub fn files_of(version: &Version) -> Result<PolicyFiles, String> {
    let map = |what: &str, json: &str| -> Result<BTreeMap<String, String>, String> {
        serde_json::from_str(json)
            .map_err(|e| format!("version {}: its {what} do not read: {e}", version.number))
    };
    Ok(PolicyFiles {
        root: PathBuf::from(format!("version {}", version.number)),
        schema: Some(version.schema.clone()),
        roles: Some(version.roles.clone()),
        policies: map("policy files", &version.policies)?,
        fixtures: map("fixtures", &version.fixtures)?,
        unreadable: vec![],
    })
}

/// A stored version as a policy set, validated against this binary's Cedar and types, known by
/// its number.
pub fn bundle_of(version: &Version) -> Result<PolicyBundle, LoadError> {
    let files = files_of(version).map_err(|message| LoadError {
        diagnostics: vec![Diagnostic {
            file: PathBuf::from(format!("version {}", version.number)),
            line: 1,
            column: 1,
            message,
            warning: false,
        }],
    })?;
    Ok(PolicyBundle::from_files(&files)?.with_release(version.number))
}

/// Runs a set's own fixtures; `Err` lists the failing cases.
pub fn check_fixtures(bundle: &PolicyBundle, files: &PolicyFiles) -> Result<usize, String> {
    let outcomes = fixtures::run_texts(
        bundle,
        files
            .fixtures
            .iter()
            .map(|(name, text)| (files.root.join("tests").join(name), text.clone())),
    )?;
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.passed())
        .map(|o| {
            format!(
                "{}: {} {} {} {:?}: expected {:?}, got {:?}",
                o.file.display(),
                o.case.role.as_deref().unwrap_or("(none)"),
                o.case.action,
                o.case.resource,
                o.case.place,
                o.case.expect,
                o.actual
            )
        })
        .collect();
    if failed.is_empty() {
        Ok(outcomes.len())
    } else {
        Err(format!(
            "{} decision fixtures failed:\n{}",
            failed.len(),
            failed.join("\n")
        ))
    }
}

/// What the gate made of a change: the summary stored with the version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateOutcome {
    pub summary: String,
}

/// Why the gate stopped a publish.
#[derive(Debug)]
pub enum GateRefusal {
    /// The change lets someone do something the active version does not, and
    /// `--allow-new-access` was not given: the comparison, with its counterexamples.
    NewAccess(Box<PolicyDiff>),
    /// The comparison could not be made (the solver is missing or failed, the sets do not
    /// compare); nothing is published unproven.
    Failed(String),
}

/// The gate of a publish: does `new` let anyone do something `active` does not? The comparison is
/// the policy analysis of `zygo policy diff` (the SMT solver `cvc5`); new access is refused
/// unless `allow_new_access`, and a comparison that cannot be made refuses the publish.
pub async fn gate_new_access(
    active: Option<(i64, &PolicyBundle)>,
    new: &PolicyBundle,
    allow_new_access: bool,
) -> Result<GateOutcome, GateRefusal> {
    let Some((number, active)) = active else {
        return Ok(GateOutcome {
            summary: "first version: nothing to compare with".to_owned(),
        });
    };
    if active.version() == new.version() {
        return Ok(GateOutcome {
            summary: format!("same content as version {number}"),
        });
    }
    let diff = analysis::diff(active, new)
        .await
        .map_err(|err| GateRefusal::Failed(err.to_string()))?;
    let summary = format!("against version {number}: {}", diff.summary());
    match (diff.grants_more(), allow_new_access) {
        (true, false) => Err(GateRefusal::NewAccess(Box::new(diff))),
        (true, true) => Ok(GateOutcome {
            summary: format!("{summary} (new access allowed with --allow-new-access)"),
        }),
        (false, _) => Ok(GateOutcome { summary }),
    }
}

/// A validated folder as a version to store.
pub fn new_version(
    files: &PolicyFiles,
    bundle: &PolicyBundle,
    published_by: &str,
    message: &str,
    diff_summary: &str,
) -> Result<NewVersion, String> {
    let json =
        |map: &BTreeMap<String, String>| serde_json::to_string(map).map_err(|e| e.to_string());
    Ok(NewVersion {
        content_hash: bundle.version().to_owned(),
        schema: files.schema.clone().unwrap_or_default(),
        roles: files.roles.clone().unwrap_or_default(),
        policies: json(&files.policies)?,
        fixtures: json(&files.fixtures)?,
        published_by: published_by.to_owned(),
        message: message.to_owned(),
        diff_summary: diff_summary.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::Path;

    use super::*;

    fn stored(files: &PolicyFiles, number: i64) -> Version {
        let bundle = PolicyBundle::from_files(files).unwrap();
        let new = new_version(files, &bundle, "ann", "m", "s").unwrap();
        Version {
            number,
            content_hash: new.content_hash,
            schema: new.schema,
            roles: new.roles,
            policies: new.policies,
            fixtures: new.fixtures,
            published_by: new.published_by,
            published_at: chrono::Utc::now(),
            message: new.message,
            diff_summary: new.diff_summary,
        }
    }

    #[test]
    fn a_stored_version_validates_as_its_folder_and_keeps_its_hash_and_fixtures() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        let folder = PolicyBundle::load(&dir).unwrap();
        let files = PolicyFiles::read(&dir).unwrap();
        let version = stored(&files, 3);
        let bundle = bundle_of(&version).unwrap();
        assert_eq!(bundle.version(), folder.version());
        assert_eq!(bundle.release(), Some(3));
        assert_eq!(folder.release(), None);
        let back = files_of(&version).unwrap();
        assert_eq!(back.fixtures, files.fixtures);
        assert!(check_fixtures(&bundle, &back).unwrap() > 0);
    }

    #[test]
    fn a_stored_version_that_does_not_validate_is_located_under_its_number() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        let files = PolicyFiles::read(&dir).unwrap();
        let mut version = stored(&files, 5);
        let mut policies: BTreeMap<String, String> =
            serde_json::from_str(&version.policies).unwrap();
        policies.insert(
            "fly.cedar".into(),
            "@id(\"fly\")\npermit (principal, action == Zygo::Action::\"Fly\", resource);\n".into(),
        );
        version.policies = serde_json::to_string(&policies).unwrap();
        let err = bundle_of(&version).unwrap_err().to_string();
        assert!(err.starts_with("version 5/fly.cedar:2:"), "{err}");
    }
}
