//! Loading the policy folder: schema, policies (re-keyed by their `@id`), and the role entities.
//! Everything is validated before it is accepted; problems come back located as `file:line:col`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use cedar_policy::{
    Entities, Entity, EntityUid, PolicyId, PolicySet, Schema, ValidationMode, Validator,
};
use sha2::{Digest, Sha256};

use super::index::PolicyIndex;
use super::memo::{MEMO_BYTES, Memo};
use super::names::Names;
use super::types::{Action, ResourceKind};

pub const SCHEMA_FILE: &str = "schema.cedarschema";
pub const ROLES_FILE: &str = "roles.cedarentities.json";
pub const ROLE_TYPE: &str = "Zygo::Role";

/// A located problem in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub warning: bool,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.warning { "warning: " } else { "" };
        write!(
            f,
            "{}:{}:{}: {kind}{}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// The policy folder did not validate; every problem found is listed.
#[derive(Debug, Clone)]
pub struct LoadError {
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors: Vec<String> = self
            .diagnostics
            .iter()
            .filter(|d| !d.warning)
            .map(|d| d.to_string())
            .collect();
        write!(f, "{}", errors.join("\n"))
    }
}

impl std::error::Error for LoadError {}

/// A validated, complete policy set: what every decision is evaluated against.
pub struct PolicyBundle {
    pub(super) schema: Schema,
    pub(super) policies: PolicySet,
    /// Each role with every role it includes (itself too): a principal's parents, given directly,
    /// so a request needs no transitive closure over the role hierarchy.
    pub(super) role_closure: HashMap<String, HashSet<EntityUid>>,
    /// The same closures as lists, for the policy index.
    pub(super) role_list: HashMap<String, Vec<EntityUid>>,
    /// The roles, and the schema's action entities when it defines action groups: the entities
    /// every request shares, built once per snapshot.
    pub(super) base_entities: Entities,
    /// Type names and action uids, parsed once.
    pub(super) names: Names,
    /// Only the policies whose scope can match a request are evaluated.
    pub(super) index: PolicyIndex,
    /// The (action, resource kind) pairs whose requests the schema accepts.
    pub(super) checked_shapes: HashSet<(Action, ResourceKind)>,
    /// Decisions already made on this snapshot.
    pub(super) memo: Memo,
    roles: BTreeSet<String>,
    version: String,
    /// The published version's number, when the set came from the database.
    release: Option<i64>,
    /// [`PolicyBundle::provenance`], made once: every request hands it to the audit trail.
    provenance: std::sync::Arc<str>,
    warnings: Vec<Diagnostic>,
}

impl fmt::Debug for PolicyBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyBundle")
            .field("version", &self.version)
            .field("release", &self.release)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Turns a miette diagnostic about `text` into located diagnostics (one per label, or one at 1:1).
fn locate(file: &Path, text: &str, err: &dyn miette::Diagnostic, warning: bool) -> Vec<Diagnostic> {
    let mut message = err.to_string();
    if let Some(help) = err.help() {
        message.push_str(&format!(" (help: {help})"));
    }
    let offsets: Vec<usize> = err
        .labels()
        .map(|labels| labels.map(|l| l.offset()).collect())
        .unwrap_or_default();
    let offsets = if offsets.is_empty() { vec![0] } else { offsets };
    offsets
        .into_iter()
        .take(1)
        .map(|offset| {
            let (line, column) = line_col(text, offset);
            Diagnostic {
                file: file.to_path_buf(),
                line,
                column,
                message: message.clone(),
                warning,
            }
        })
        .collect()
}

fn diagnostic_at(file: &Path, line: usize, column: usize, message: String) -> Diagnostic {
    Diagnostic {
        file: file.to_path_buf(),
        line,
        column,
        message,
        warning: false,
    }
}

/// Line and column of each policy of a file, in order: where its `permit`/`forbid` begins.
fn policy_starts(text: &str) -> Vec<(usize, usize)> {
    text.lines()
        .enumerate()
        .filter_map(|(index, line)| {
            let code = line.split("//").next().unwrap_or("");
            let trimmed = code.trim_start();
            (trimmed.starts_with("permit") || trimmed.starts_with("forbid"))
                .then(|| (index + 1, code.len() - trimmed.len() + 1))
        })
        .collect()
}

fn read(path: &Path, diagnostics: &mut Vec<Diagnostic>) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(err) => {
            diagnostics.push(diagnostic_at(
                path,
                1,
                1,
                format!("cannot read file: {err}"),
            ));
            None
        }
    }
}

/// The files a policy set is made of, read from a folder or from a stored version: the schema,
/// the roles, the `.cedar` files and the decision fixtures (`tests/*.json`), by file name. Both go
/// through the same validation ([`PolicyBundle::from_files`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyFiles {
    /// Where the files come from (a folder, or `version N`): diagnostics are located under it.
    pub root: PathBuf,
    /// `schema.cedarschema`; `None` when missing or unreadable.
    pub schema: Option<String>,
    /// `roles.cedarentities.json`; `None` when missing or unreadable.
    pub roles: Option<String>,
    /// Each `.cedar` file, by file name.
    pub policies: BTreeMap<String, String>,
    /// Each fixture file of `tests/`, by file name.
    pub fixtures: BTreeMap<String, String>,
    /// Files that could not be read.
    pub unreadable: Vec<Diagnostic>,
}

impl PolicyFiles {
    /// Reads a policy folder (a missing `tests/` is no fixtures).
    pub fn read(dir: &Path) -> Result<PolicyFiles, LoadError> {
        let mut unreadable = Vec::new();
        let schema = read(&dir.join(SCHEMA_FILE), &mut unreadable);
        let roles = read(&dir.join(ROLES_FILE), &mut unreadable);
        let named = |dir: &Path, ext: &str| -> std::io::Result<Vec<(String, PathBuf)>> {
            Ok(std::fs::read_dir(dir)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == ext))
                .filter_map(|p| Some((p.file_name()?.to_str()?.to_owned(), p)))
                .collect())
        };
        let files = named(dir, "cedar").map_err(|err| LoadError {
            diagnostics: vec![diagnostic_at(
                dir,
                1,
                1,
                format!("cannot read the policy folder: {err}"),
            )],
        })?;
        let mut policies = BTreeMap::new();
        for (name, path) in files {
            if let Some(text) = read(&path, &mut unreadable) {
                policies.insert(name, text);
            }
        }
        let mut fixtures = BTreeMap::new();
        for (name, path) in named(&dir.join("tests"), "json").unwrap_or_default() {
            if let Some(text) = read(&path, &mut unreadable) {
                fixtures.insert(name, text);
            }
        }
        Ok(PolicyFiles {
            root: dir.to_path_buf(),
            schema,
            roles,
            policies,
            fixtures,
            unreadable,
        })
    }

    /// Writes the files into `dir` (created if needed), fixtures under `tests/`.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir.join("tests"))?;
        if let Some(schema) = &self.schema {
            std::fs::write(dir.join(SCHEMA_FILE), schema)?;
        }
        if let Some(roles) = &self.roles {
            std::fs::write(dir.join(ROLES_FILE), roles)?;
        }
        for (name, text) in &self.policies {
            std::fs::write(dir.join(checked_name(name)?), text)?;
        }
        for (name, text) in &self.fixtures {
            std::fs::write(dir.join("tests").join(checked_name(name)?), text)?;
        }
        Ok(())
    }
}

/// A stored file name, refused when it could leave the folder it is written into.
fn checked_name(name: &str) -> std::io::Result<&str> {
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("`{name}` is not a plain file name"),
        ));
    }
    Ok(name)
}

impl PolicyBundle {
    /// Reads and validates the policy folder (strict mode). Warnings are kept in the bundle.
    pub fn load(dir: &Path) -> Result<PolicyBundle, LoadError> {
        PolicyBundle::from_files(&PolicyFiles::read(dir)?)
    }

    /// Validates a policy set given as files (a folder as read, or a stored version): the one
    /// validation every set goes through. Its version is the content hash of the files.
    pub fn from_files(files: &PolicyFiles) -> Result<PolicyBundle, LoadError> {
        let dir = files.root.as_path();
        let mut diagnostics = files.unreadable.clone();
        let mut hasher = Sha256::new();

        let schema_path = dir.join(SCHEMA_FILE);
        let schema = files.schema.as_ref().and_then(|text| {
            hasher.update(text.as_bytes());
            match Schema::from_cedarschema_str(text) {
                Ok((schema, warnings)) => {
                    for warning in warnings {
                        diagnostics.extend(locate(&schema_path, text, &warning, true));
                    }
                    Some(schema)
                }
                Err(err) => {
                    diagnostics.extend(locate(&schema_path, text, &err, false));
                    None
                }
            }
        });

        if files.policies.is_empty() {
            diagnostics.push(diagnostic_at(dir, 1, 1, "no .cedar policy files".into()));
        }

        // Every policy is known by its @id; remember where each came from for located errors.
        let mut policies = PolicySet::new();
        // The file's text is shared by its policies: a copy each would cost the file's size times
        // the number of policies in it.
        let mut origin: BTreeMap<String, (PathBuf, std::sync::Arc<str>)> = BTreeMap::new();
        for (name, text) in &files.policies {
            let file = &dir.join(name);
            let shared: std::sync::Arc<str> = std::sync::Arc::from(text.as_str());
            let starts = policy_starts(text);
            hasher.update(name.as_bytes());
            hasher.update(text.as_bytes());
            let parsed = match PolicySet::from_str(text) {
                Ok(set) => set,
                Err(err) => {
                    diagnostics.extend(locate(file, text, &err, false));
                    continue;
                }
            };
            let mut in_file: Vec<_> = parsed.policies().collect();
            // `from_str` names policies policy0, policy1, … in source order.
            in_file.sort_by_key(|p| {
                p.id()
                    .to_string()
                    .trim_start_matches("policy")
                    .parse::<usize>()
                    .unwrap_or(usize::MAX)
            });
            if parsed.templates().next().is_some() {
                diagnostics.push(diagnostic_at(
                    file,
                    1,
                    1,
                    "templates are not supported".into(),
                ));
            }
            for (index, policy) in in_file.into_iter().enumerate() {
                let (line, column) = starts.get(index).copied().unwrap_or((1, 1));
                let Some(id) = policy.annotation("id").map(str::to_owned) else {
                    diagnostics.push(diagnostic_at(
                        file,
                        line,
                        column,
                        "policy has no @id(\"…\") annotation".into(),
                    ));
                    continue;
                };
                if let Some((other, _)) = origin.get(&id) {
                    diagnostics.push(diagnostic_at(
                        file,
                        line,
                        column,
                        format!("policy id `{id}` is already used in {}", other.display()),
                    ));
                    continue;
                }
                if let Err(err) = policies.add(policy.new_id(PolicyId::new(&id))) {
                    diagnostics.push(diagnostic_at(file, line, column, err.to_string()));
                    continue;
                }
                origin.insert(id, (file.clone(), shared.clone()));
            }
        }

        let roles_path = dir.join(ROLES_FILE);
        let roles_text = files.roles.as_ref();
        if let Some(text) = roles_text {
            hasher.update(text.as_bytes());
        }

        let Some(schema) = schema else {
            return Err(LoadError { diagnostics });
        };

        let validation = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
        let mut locate_in_policy =
            |id: &PolicyId, err: &dyn miette::Diagnostic, warning: bool| match origin
                .get(&id.to_string())
            {
                Some((file, text)) => diagnostics.extend(locate(file, text, err, warning)),
                None => diagnostics.push(diagnostic_at(dir, 1, 1, err.to_string())),
            };
        for err in validation.validation_errors() {
            locate_in_policy(err.policy_id(), err, false);
        }
        for warning in validation.validation_warnings() {
            locate_in_policy(warning.policy_id(), warning, true);
        }

        let mut role_entities = Vec::new();
        let mut role_closure = HashMap::new();
        let mut roles = BTreeSet::new();
        if let Some(text) = roles_text {
            match Entities::from_json_str(text, Some(&schema)) {
                Ok(entities) => {
                    for entity in entities.iter() {
                        let uid = entity.uid();
                        // The schema's action entities come along when parsing with a schema.
                        if uid.type_name().basename() == "Action" {
                            continue;
                        }
                        if uid.type_name().to_string() != ROLE_TYPE {
                            diagnostics.push(diagnostic_at(
                                &roles_path,
                                1,
                                1,
                                format!("{uid} is not a {ROLE_TYPE}: this file defines roles only"),
                            ));
                            continue;
                        }
                        let mut closure: HashSet<EntityUid> = entities
                            .ancestors(&uid)
                            .map(|ancestors| ancestors.cloned().collect())
                            .unwrap_or_default();
                        closure.insert(uid.clone());
                        role_closure.insert(uid.id().unescaped().to_owned(), closure);
                        roles.insert(uid.id().unescaped().to_owned());
                        role_entities.push(entity.clone());
                    }
                }
                Err(err) => diagnostics.extend(locate(&roles_path, text, &err, false)),
            }
        }

        if diagnostics.iter().any(|d| !d.warning) {
            return Err(LoadError { diagnostics });
        }
        // Action entities matter only when the schema groups actions (`action X in [Group]`).
        let action_entities: Vec<Entity> = match schema.action_entities() {
            Ok(actions)
                if actions.iter().any(|a| {
                    actions
                        .ancestors(&a.uid())
                        .is_some_and(|mut ancestors| ancestors.next().is_some())
                }) =>
            {
                actions.iter().cloned().collect()
            }
            _ => vec![],
        };
        let all_actions = schema
            .action_entities()
            .unwrap_or_else(|_| Entities::empty());
        let index = PolicyIndex::new(&policies, &all_actions, &roles);
        let names = Names::new().map_err(|message| LoadError {
            diagnostics: vec![diagnostic_at(&schema_path, 1, 1, message)],
        })?;
        let base_entities =
            Entities::from_entities(role_entities.into_iter().chain(action_entities), None)
                .map_err(|err| LoadError {
                    diagnostics: vec![diagnostic_at(&roles_path, 1, 1, err.to_string())],
                })?;
        let role_list = role_closure
            .iter()
            .map(|(role, closure)| (role.clone(), closure.iter().cloned().collect()))
            .collect();
        let version = hex::encode(&hasher.finalize()[..8]);
        let mut bundle = PolicyBundle {
            schema,
            policies,
            role_closure,
            role_list,
            base_entities,
            names,
            index,
            checked_shapes: HashSet::new(),
            memo: Memo::new(MEMO_BYTES),
            roles,
            version: version.clone(),
            release: None,
            provenance: version.into(),
            warnings: diagnostics,
        };
        bundle.checked_shapes = bundle.check_shapes();
        Ok(bundle)
    }

    /// The roles the folder defines.
    pub fn roles(&self) -> &BTreeSet<String> {
        &self.roles
    }

    /// A short content hash of the folder, to tell which set is loaded.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The set's name in audit events: its hash, and its published number when it has one (as
    /// `zygo policy explain` prints it).
    pub fn provenance(&self) -> std::sync::Arc<str> {
        self.provenance.clone()
    }

    /// The number of the published version this set is (see `zygo policy publish`), or `None`
    /// for a set read from a folder.
    pub fn release(&self) -> Option<i64> {
        self.release
    }

    /// The set, known as published version `number`.
    pub fn with_release(mut self, number: i64) -> Self {
        self.release = Some(number);
        self.provenance = format!("{} (published version {number})", self.version).into();
        self
    }

    /// Validation warnings (the set is usable, but something deserves a look).
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// The ids of the loaded policies.
    pub fn policy_ids(&self) -> Vec<String> {
        self.policies
            .policies()
            .map(|p| p.id().to_string())
            .collect()
    }
}
