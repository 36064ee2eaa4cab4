//! Reads VoiceAgent and VoiceAgentTemplate manifests from a directory the
//! way `kubectl apply -f DIR` would take them: every `.yaml` / `.yml` file
//! directly in it (not its subdirectories), several documents per file,
//! each checked against its CRD's schema with unknown fields refused, as
//! the API server does with strict field validation. A bad document is
//! reported by file, document number and field; the others are used.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::CustomResourceExt;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::crd::{VoiceAgent, VoiceAgentTemplate};

const API_VERSION: &str = "voiceagents.io/v1alpha1";
const KIND: &str = "VoiceAgent";
const TEMPLATE_KIND: &str = "VoiceAgentTemplate";

/// One object read from a file: a VoiceAgent unless said otherwise.
#[derive(Debug, Clone)]
pub struct Document<T = VoiceAgent> {
    pub file: PathBuf,
    /// 1-based position among the file's documents.
    pub index: usize,
    pub object: T,
}

/// A document that could not be used.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestError {
    pub file: PathBuf,
    /// 1-based; 0 when the file itself could not be read.
    pub document: usize,
    /// JSON path of the bad field (`spec.phoneNumber`), when one is to blame.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.document > 0 {
            write!(f, ", document {}", self.document)?;
        }
        match &self.field {
            Some(field) => write!(f, ": {field}: {}", self.message),
            None => write!(f, ": {}", self.message),
        }
    }
}

/// What a directory holds now.
#[derive(Debug, Default)]
pub struct Scan {
    pub documents: Vec<Document>,
    pub templates: Vec<Document<VoiceAgentTemplate>>,
    pub errors: Vec<ManifestError>,
    /// Documents that are neither VoiceAgents nor VoiceAgentTemplates
    /// (other kinds are not for us).
    pub skipped: Vec<String>,
    /// Files that had at least one error: what came from them before is
    /// kept, not deleted.
    pub failed_files: HashSet<PathBuf>,
}

/// Fingerprint of the directory's manifest files (names and contents), to
/// tell cheaply whether anything changed.
pub fn fingerprint(dir: &Path) -> std::io::Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    for path in manifest_files(dir)? {
        hasher.update(path.to_string_lossy().as_bytes());
        hasher.update([0]);
        match std::fs::read(&path) {
            Ok(bytes) => hasher.update(&bytes),
            Err(e) => hasher.update(e.to_string().as_bytes()),
        }
        hasher.update([0]);
    }
    Ok(hasher.finalize().into())
}

/// The manifest files of `dir`, sorted.
pub fn manifest_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let yaml = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        );
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if yaml && !hidden && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// One CRD's schema, compiled.
struct Schema {
    schema: Value,
    compiled: jsonschema::Validator,
}

impl Schema {
    fn of(crd: impl serde::Serialize) -> Schema {
        let crd = serde_json::to_value(crd).expect("the CRD serializes");
        let schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone();
        let compiled = jsonschema::validator_for(&schema).expect("the CRD schema compiles");
        Schema { schema, compiled }
    }

    /// `value` as a `T`, or its first problem: (field, message).
    fn check<T: DeserializeOwned>(&self, value: &Value) -> Result<T, (Option<String>, String)> {
        let mut unknown = Vec::new();
        unknown_fields(&self.schema, value, "", &mut unknown);
        if let Some(field) = unknown.into_iter().next() {
            return Err((Some(field), "unknown field".into()));
        }
        if let Some(error) = self.compiled.iter_errors(value).next() {
            let mut field = dotted(error.instance_path.as_str());
            let message = match &error.kind {
                jsonschema::error::ValidationErrorKind::Required { property } => {
                    let name = property.as_str().unwrap_or_default();
                    field = if field.is_empty() {
                        name.to_owned()
                    } else {
                        format!("{field}.{name}")
                    };
                    "is required".to_owned()
                }
                _ => error.to_string(),
            };
            return Err(((!field.is_empty()).then_some(field), message));
        }
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let field = (path != ".").then_some(path);
            (field, e.into_inner().to_string())
        })
    }
}

/// Checks documents against the CRDs.
pub struct Validator {
    voice_agent: Schema,
    template: Schema,
}

impl Validator {
    pub fn new() -> Validator {
        Validator {
            voice_agent: Schema::of(VoiceAgent::crd()),
            template: Schema::of(VoiceAgentTemplate::crd()),
        }
    }

    /// The first problem of `value` as a VoiceAgent: (field, message).
    fn check(&self, value: &Value) -> Result<VoiceAgent, (Option<String>, String)> {
        let object: VoiceAgent = self.voice_agent.check(value)?;
        // The CRD's CEL rule: without a template these are the VoiceAgent's
        // own to give.
        if object.spec.template_ref.is_none() {
            let spec = &object.spec;
            for (field, value) in [
                ("spec.businessName", &spec.business_name),
                ("spec.voiceId", &spec.voice_id),
                ("spec.greeting", &spec.greeting),
            ] {
                if value.is_empty() {
                    return Err((Some(field.to_owned()), "is required".to_owned()));
                }
            }
        }
        Ok(object)
    }

    /// The first problem of `value` as a VoiceAgentTemplate, with the
    /// CRD's CEL rule that a template names no location.
    fn check_template(
        &self,
        value: &Value,
    ) -> Result<VoiceAgentTemplate, (Option<String>, String)> {
        let object: VoiceAgentTemplate = self.template.check(value)?;
        for (field, set) in [
            ("spec.businessId", object.spec.business_id.is_some()),
            ("spec.locationId", object.spec.location_id.is_some()),
        ] {
            if set {
                return Err((
                    Some(field.to_owned()),
                    "a VoiceAgentTemplate cannot set it: each VoiceAgent names its own location"
                        .to_owned(),
                ));
            }
        }
        Ok(object)
    }
}

impl Default for Validator {
    fn default() -> Self {
        Validator::new()
    }
}

/// `/spec/phoneNumber` as `spec.phoneNumber`.
fn dotted(pointer: &str) -> String {
    pointer
        .trim_start_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect::<Vec<_>>()
        .join(".")
}

/// Fields of `value` the structural `schema` does not declare (metadata
/// is the API server's and is checked separately).
fn unknown_fields(schema: &Value, value: &Value, path: &str, found: &mut Vec<String>) {
    let (Some(object), Some(properties)) = (
        value.as_object(),
        schema.get("properties").and_then(Value::as_object),
    ) else {
        if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
            for (i, item) in array.iter().enumerate() {
                unknown_fields(items, item, &format!("{path}[{i}]"), found);
            }
        }
        return;
    };
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
        || schema.get("additionalProperties").is_some()
    {
        return;
    }
    for (key, sub) in object {
        let field = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        if path.is_empty() && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        match properties.get(key) {
            Some(schema) => unknown_fields(schema, sub, &field, found),
            None => found.push(field),
        }
    }
}

/// Reads every manifest file of `dir`.
pub fn scan(dir: &Path, validator: &Validator) -> std::io::Result<Scan> {
    let mut scan = Scan::default();
    // By kind, namespace and name.
    let mut seen: BTreeMap<(&str, String, String), (PathBuf, usize)> = BTreeMap::new();
    for file in manifest_files(dir)? {
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) => {
                scan.failed_files.insert(file.clone());
                scan.errors.push(ManifestError {
                    file,
                    document: 0,
                    field: None,
                    message: format!("cannot read the file: {e}"),
                });
                continue;
            }
        };
        for (index, value) in documents(&text).into_iter().enumerate() {
            let index = index + 1;
            let fail = |field: Option<String>, message: String| ManifestError {
                file: file.clone(),
                document: index,
                field,
                message,
            };
            let value = match value {
                Ok(Value::Null) => continue,
                Ok(value) => value,
                Err(message) => {
                    scan.errors.push(fail(None, message));
                    continue;
                }
            };
            let object = match identify(&value) {
                Identity::Other(what) => {
                    scan.skipped.push(format!(
                        "{}, document {index}: {what}, not a VoiceAgent or VoiceAgentTemplate",
                        file.display()
                    ));
                    continue;
                }
                Identity::Bad(field, message) => Err((Some(field.into()), message)),
                Identity::VoiceAgent => validator.check(&value).and_then(|mut va| {
                    metadata(&mut va.metadata).map(|()| Parsed::VoiceAgent(Box::new(va)))
                }),
                Identity::Template => validator.check_template(&value).and_then(|mut t| {
                    metadata(&mut t.metadata).map(|()| Parsed::Template(Box::new(t)))
                }),
            };
            let object = match object {
                Ok(object) => object,
                Err((field, message)) => {
                    scan.errors.push(fail(field, message));
                    continue;
                }
            };
            let (kind, meta) = match &object {
                Parsed::VoiceAgent(va) => (KIND, &va.metadata),
                Parsed::Template(t) => (TEMPLATE_KIND, &t.metadata),
            };
            let key = (
                kind,
                meta.namespace.clone().unwrap_or_default(),
                meta.name.clone().unwrap_or_default(),
            );
            if let Some((other, n)) = seen.get(&key) {
                scan.errors.push(fail(
                    Some("metadata.name".into()),
                    format!(
                        "{kind} {}/{} is already defined in {}, document {n}",
                        key.1,
                        key.2,
                        other.display()
                    ),
                ));
                continue;
            }
            seen.insert(key, (file.clone(), index));
            match object {
                Parsed::VoiceAgent(object) => scan.documents.push(Document {
                    file: file.clone(),
                    index,
                    object: *object,
                }),
                Parsed::Template(object) => scan.templates.push(Document {
                    file: file.clone(),
                    index,
                    object: *object,
                }),
            }
        }
    }
    for error in &scan.errors {
        scan.failed_files.insert(error.file.clone());
    }
    Ok(scan)
}

/// A document read as one of our kinds.
enum Parsed {
    VoiceAgent(Box<VoiceAgent>),
    Template(Box<VoiceAgentTemplate>),
}

enum Identity {
    VoiceAgent,
    Template,
    /// Another kind of object: `kind` (`apiVersion`).
    Other(String),
    Bad(&'static str, String),
}

fn identify(value: &Value) -> Identity {
    if !value.is_object() {
        return Identity::Bad(
            "kind",
            "the document is not a mapping (expected a Kubernetes object)".into(),
        );
    }
    let kind = value.get("kind").and_then(Value::as_str);
    let api_version = value.get("apiVersion").and_then(Value::as_str);
    match (kind, api_version) {
        (None, _) => Identity::Bad("kind", "is required".into()),
        (Some(KIND), Some(API_VERSION)) => Identity::VoiceAgent,
        (Some(TEMPLATE_KIND), Some(API_VERSION)) => Identity::Template,
        (Some(KIND | TEMPLATE_KIND), Some(other)) => Identity::Bad(
            "apiVersion",
            format!("{other:?} is not served; use {API_VERSION}"),
        ),
        (Some(KIND | TEMPLATE_KIND), None) => Identity::Bad("apiVersion", "is required".into()),
        (Some(kind), api_version) => Identity::Other(format!(
            "{kind} ({})",
            api_version.unwrap_or("no apiVersion")
        )),
    }
}

/// Name and namespace as the API server would accept them; the namespace
/// defaults to `default`, as with `kubectl apply` and no context namespace.
fn metadata(meta: &mut ObjectMeta) -> Result<(), (Option<String>, String)> {
    let name = meta.name.clone().unwrap_or_default();
    if name.is_empty() {
        return Err((Some("metadata.name".into()), "is required".into()));
    }
    if let Some(reason) = not_a_dns_name(&name, 253) {
        return Err((Some("metadata.name".into()), reason));
    }
    let namespace = meta.namespace.clone().unwrap_or_else(|| "default".into());
    if let Some(reason) = not_a_dns_name(&namespace, 63) {
        return Err((Some("metadata.namespace".into()), reason));
    }
    meta.namespace = Some(namespace);
    Ok(())
}

fn not_a_dns_name(name: &str, max: usize) -> Option<String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    let ok_ends = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if name.len() > max || !ok_chars || !ok_ends {
        Some(format!(
            "{name:?} must be at most {max} lower-case letters, digits, '-' or '.', starting and ending with a letter or digit"
        ))
    } else {
        None
    }
}

/// Where each document of `text` is: line ranges `[start, end)`,
/// separators excluded, documents with nothing but comments left out.
pub fn document_lines(text: &str) -> Vec<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut ranges = Vec::new();
    let mut start = 0;
    for n in 0..=lines.len() {
        let boundary = match lines.get(n) {
            Some(line) => *line == "---" || line.starts_with("--- ") || *line == "...",
            None => true,
        };
        if boundary {
            let blank = lines[start..n]
                .iter()
                .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
            if !blank {
                ranges.push((start, n));
            }
            start = n + 1;
        }
    }
    ranges
}

/// The file's documents, each parsed on its own so that one broken
/// document does not hide the others. Line numbers in parse errors are
/// the file's.
fn documents(text: &str) -> Vec<Result<Value, String>> {
    let lines: Vec<&str> = text.lines().collect();
    document_lines(text)
        .into_iter()
        .map(|(start, end)| {
            let padded = format!("{}{}\n", "\n".repeat(start), lines[start..end].join("\n"));
            serde_saphyr::from_str::<Value>(&padded).map_err(|e| e.to_string())
        })
        .collect()
}

/// `text` with document `index` (1-based, as [`Document::index`])
/// replaced by `replacement`; `None` when there is no such document.
pub fn replace_document(text: &str, index: usize, replacement: &str) -> Option<String> {
    let (start, end) = *document_lines(text).get(index.checked_sub(1)?)?;
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    for line in &lines[..start] {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(replacement.trim_end());
    out.push('\n');
    for line in &lines[end..] {
        out.push_str(line);
        out.push('\n');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "apiVersion: voiceagents.io/v1alpha1
kind: VoiceAgent
metadata:
  name: a
spec:
  businessId: B1
  locationId: L1
  businessName: Clinic
  voiceId: v1
  greeting: Hello
";

    fn scan_text(files: &[(&str, &str)]) -> Scan {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        scan(dir.path(), &Validator::new()).unwrap()
    }

    fn only_error(scan: &Scan) -> (usize, Option<&str>, &str) {
        assert_eq!(scan.errors.len(), 1, "{:?}", scan.errors);
        let e = &scan.errors[0];
        (e.document, e.field.as_deref(), e.message.as_str())
    }

    #[test]
    fn several_documents_and_a_default_namespace() {
        let second = GOOD.replace("name: a", "name: b").replace("L1", "L2");
        let text = format!("# two agents\n---\n{GOOD}---\n{second}\n---\n");
        let scan = scan_text(&[("two.yaml", &text)]);
        assert!(scan.errors.is_empty(), "{:?}", scan.errors);
        let names: Vec<_> = scan
            .documents
            .iter()
            .map(|d| (d.index, d.object.metadata.name.clone().unwrap()))
            .collect();
        assert_eq!(names, [(1, "a".to_owned()), (2, "b".to_owned())]);
        assert_eq!(
            scan.documents[0].object.metadata.namespace.as_deref(),
            Some("default")
        );
        assert!(scan.documents[0].object.spec.enabled, "defaults applied");
    }

    #[test]
    fn a_bad_document_is_named_and_the_others_kept() {
        let bad = GOOD.replace("name: a", "name: b").replace(
            "greeting: Hello",
            "greeting: Hello\n  phoneNumber: \"0312 345\"",
        );
        let scan = scan_text(&[("x.yaml", &format!("{GOOD}---\n{bad}"))]);
        let (doc, field, message) = only_error(&scan);
        assert_eq!((doc, field), (2, Some("spec.phoneNumber")));
        assert!(message.contains("0312 345"), "{message}");
        assert_eq!(scan.documents.len(), 1);
        assert!(scan.failed_files.iter().any(|f| f.ends_with("x.yaml")));
        let shown = scan.errors[0].to_string();
        assert!(
            shown.ends_with(&format!("x.yaml, document 2: spec.phoneNumber: {message}")),
            "{shown}"
        );
    }

    #[test]
    fn missing_required_field_is_named() {
        let scan = scan_text(&[("x.yaml", &GOOD.replace("  businessId: B1\n", ""))]);
        assert_eq!(
            only_error(&scan),
            (1, Some("spec.businessId"), "is required")
        );
    }

    #[test]
    fn without_a_template_the_voice_is_required() {
        let scan = scan_text(&[("x.yaml", &GOOD.replace("  voiceId: v1\n", ""))]);
        assert_eq!(only_error(&scan), (1, Some("spec.voiceId"), "is required"));
    }

    #[test]
    fn unknown_field_is_refused() {
        let scan = scan_text(&[("x.yaml", &GOOD.replace("voiceId", "voiceID"))]);
        assert_eq!(only_error(&scan).1, Some("spec.voiceID"));
    }

    #[test]
    fn wrong_type_is_named() {
        let text = format!("{GOOD}  conversation:\n    maxDurationSeconds: long\n");
        let scan = scan_text(&[("x.yaml", &text)]);
        assert_eq!(
            only_error(&scan).1,
            Some("spec.conversation.maxDurationSeconds")
        );
    }

    #[test]
    fn syntax_error_keeps_the_file_line_numbers() {
        let broken = "apiVersion: voiceagents.io/v1alpha1\nkind: [VoiceAgent\n";
        let scan = scan_text(&[("x.yaml", &format!("{GOOD}---\n{broken}"))]);
        let (doc, field, message) = only_error(&scan);
        assert_eq!((doc, field), (2, None));
        assert!(
            message.contains("line 13") || message.contains("13:"),
            "{message}"
        );
        assert_eq!(scan.documents.len(), 1);
    }

    #[test]
    fn other_kinds_are_skipped_and_wrong_versions_refused() {
        let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n";
        let old = GOOD.replace("v1alpha1", "v1beta9");
        let scan = scan_text(&[("a.yaml", cm), ("b.yml", &old), ("c.txt", GOOD)]);
        assert_eq!(scan.skipped.len(), 1, "{:?}", scan.skipped);
        assert_eq!(only_error(&scan).1, Some("apiVersion"));
        assert!(scan.documents.is_empty(), "c.txt is not a manifest");
    }

    #[test]
    fn the_fleet_example_gives_one_template_and_three_voiceagents_naming_it() {
        let fleet = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fleet");
        let scan = scan(&fleet, &Validator::new()).unwrap();
        assert!(scan.errors.is_empty(), "{:?}", scan.errors);
        assert_eq!(scan.templates.len(), 1);
        let template = &scan.templates[0].object;
        assert_eq!(template.metadata.namespace.as_deref(), Some("tenants"));
        assert_eq!(scan.documents.len(), 3);
        for doc in &scan.documents {
            let named = doc.object.spec.template_ref.as_ref().unwrap();
            assert_eq!(Some(named.name.as_str()), template.metadata.name.as_deref());
        }
    }

    #[test]
    fn a_template_is_checked_against_its_crd_and_may_not_name_a_location() {
        let template = "apiVersion: voiceagents.io/v1alpha1\nkind: VoiceAgentTemplate\nmetadata:\n  name: a\nspec:\n  greeting: Hello\n";
        let with = |line: &str| {
            template.replace(
                "  greeting: Hello\n",
                &format!("  greeting: Hello\n  {line}\n"),
            )
        };
        let scan = scan_text(&[("t.yaml", template)]);
        assert!(scan.errors.is_empty(), "{:?}", scan.errors);
        assert_eq!(
            scan.templates[0].object.metadata.namespace.as_deref(),
            Some("default")
        );
        for (line, field) in [
            ("locationId: L1", "spec.locationId"),
            ("businessId: B1", "spec.businessId"),
            ("voiceIdd: x", "spec.voiceIdd"),
            ("language: Romanian", "spec.language"),
        ] {
            let scan = scan_text(&[("t.yaml", &with(line))]);
            assert_eq!(only_error(&scan).1, Some(field), "{line}");
            assert!(scan.templates.is_empty());
        }
        // A template and a VoiceAgent may share a name; two templates not.
        let twice = format!("{template}---\n{template}---\n{GOOD}");
        let scan = scan_text(&[("t.yaml", &twice)]);
        let (document, field, message) = only_error(&scan);
        assert_eq!((document, field), (2, Some("metadata.name")));
        assert!(
            message.starts_with("VoiceAgentTemplate default/a is already defined in"),
            "{message}"
        );
        assert_eq!((scan.templates.len(), scan.documents.len()), (1, 1));
    }

    #[test]
    fn names_must_be_dns_names_and_unique() {
        let scan = scan_text(&[("x.yaml", &GOOD.replace("name: a", "name: Clinic_A"))]);
        assert_eq!(only_error(&scan).1, Some("metadata.name"));
        let scan = scan_text(&[("x.yaml", GOOD), ("y.yaml", GOOD)]);
        let (doc, field, message) = only_error(&scan);
        assert_eq!((doc, field), (1, Some("metadata.name")));
        assert!(message.contains("x.yaml"), "{message}");
    }

    #[test]
    fn one_document_is_replaced_in_place() {
        let text = "# head\na: 1\n---\n# second\nb: 2\n---\nc: 3\n";
        assert_eq!(document_lines(text), [(0, 2), (3, 5), (6, 7)]);
        let out = replace_document(text, 2, "b: 20\n").unwrap();
        assert_eq!(out, "# head\na: 1\n---\nb: 20\n---\nc: 3\n");
        assert!(replace_document(text, 4, "x: 1").is_none());
        assert!(replace_document(text, 0, "x: 1").is_none());
    }

    #[test]
    fn fingerprint_follows_contents() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), GOOD).unwrap();
        let one = fingerprint(dir.path()).unwrap();
        assert_eq!(one, fingerprint(dir.path()).unwrap());
        std::fs::write(dir.path().join("a.yaml"), GOOD.replace("Hello", "Hi")).unwrap();
        assert_ne!(one, fingerprint(dir.path()).unwrap());
    }
}
