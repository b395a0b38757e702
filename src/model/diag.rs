//! Diagnostics: every problem found in a plan, with a stable code, a span and a help line.
//!
//! Rendering (text with a caret, or JSON) lives in `ui::diagnostics`; this module is data.
//! The code table is the single list of codes; `docs/diagnostics.md` documents each one and
//! a test fails when a code has no fixture under `tests/fixtures/bad/`.
//!
//! Imports: model::span. No I/O.

use serde::Serialize;

use super::span::Span;

/// How bad a diagnostic is. Warnings never fail `validate`; errors do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

macro_rules! codes {
    ($($variant:ident = $code:literal, $slug:literal, $summary:literal;)*) => {
        /// A stable diagnostic code. Never renumber: users and tools match on them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code { $($variant),* }

        impl Code {
            /// Every code, in numeric order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The code as printed, e.g. `E003`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code),* }
            }

            /// A short kebab-case name, e.g. `unknown-field`.
            pub fn slug(self) -> &'static str {
                match self { $(Code::$variant => $slug),* }
            }

            /// One line saying what the code means.
            pub fn summary(self) -> &'static str {
                match self { $(Code::$variant => $summary),* }
            }
        }
    };
}

codes! {
    YamlSyntax = "E001", "yaml-syntax", "the file is not valid YAML";
    DuplicateKey = "E002", "duplicate-key", "a mapping has the same key twice";
    UnknownField = "E003", "unknown-field", "a field that this place does not accept";
    MissingField = "E004", "missing-field", "a required field is absent";
    WrongType = "E005", "wrong-type", "a value has the wrong YAML type";
    InvalidValue = "E006", "invalid-value", "a value outside the allowed set or range";
    UnknownKind = "E007", "unknown-resource-type", "a resource `type` that idlab does not know";
    BadReference = "E010", "bad-reference", "a `${...}` expression that cannot be parsed or is not allowed here";
    UndeclaredResource = "E011", "undeclared-resource", "a reference to a resource the plan does not declare";
    UnknownAttribute = "E012", "unknown-attribute", "a reference to an attribute the resource kind does not export";
    UndeclaredVariable = "E013", "undeclared-variable", "a `${var.NAME}` whose variable is not declared";
    WrongReferenceKind = "E014", "wrong-reference-kind", "a reference to a resource of the wrong kind for this field";
    DependencyCycle = "E015", "dependency-cycle", "resources depend on each other in a cycle";
    PrincipalNotIdentity = "E016", "principal-not-identity", "a principal that is not an identity";
    VerifyIdentityNotOnVm = "E017", "verify-identity-not-on-vm", "a verify check uses an identity the VM does not carry";
    UnknownRole = "E018", "unknown-role", "a role name that is not a built-in role";
    SecretUnavailable = "E019", "secret-unavailable", "a secret or environment value whose source is not available";
    ResourceGroupName = "E020", "resource-group-name", "a resource group name breaks Azure's rules";
    IdentityName = "E021", "identity-name", "a user-assigned identity name breaks Azure's rules";
    IdentityNameTooLongForVm = "E022", "identity-name-too-long-for-vm", "an identity assigned to a VM has a name over 24 characters";
    StorageAccountName = "E023", "storage-account-name", "a storage account name breaks Azure's rules";
    KeyVaultName = "E024", "key-vault-name", "a key vault name breaks Azure's rules";
    VmName = "E025", "vm-name", "a virtual machine or computer name breaks Azure's rules";
    SqlServerName = "E026", "sql-server-name", "a SQL server name breaks Azure's rules";
    DataLakeStoreName = "E027", "data-lake-store-name", "a Data Lake Store name breaks Azure's rules";
    ContainerName = "E028", "container-name", "a blob container name breaks Azure's rules";
    ChildName = "E029", "child-resource-name", "a secret, blob, subnet, rule, database or other child name breaks Azure's rules";
    Location = "E030", "location", "an unknown Azure region";
    Cidr = "E031", "address-prefix", "an address prefix that is not valid CIDR or does not fit its network";
    SubscriptionId = "E032", "subscription-id", "a subscription or tenant id that is not a GUID";
    DuplicateArmResource = "E033", "duplicate-arm-resource", "two logical resources name the same Azure resource";
    Conflict = "E034", "conflicting-fields", "fields that exclude each other, or none of a required choice";
    Acl = "E035", "acl-entry", "a Data Lake ACL entry or permission string that is malformed";
    VariableOverride = "E036", "variable-override", "a --var or --var-file entry that is malformed or names no declared variable";
    FileNotFound = "E037", "file-not-found", "a file the plan refers to does not exist";
    PlanName = "E038", "plan-name", "a plan name that cannot be used as a tag value";
    RoleDefinitionId = "E039", "role-definition-id", "a role definition id that is not a GUID or a definition resource id";
    Tags = "E040", "tags", "tags that break Azure's limits";
    ImageAlias = "E041", "image", "an unknown VM image alias";
    NsgRule = "E042", "nsg-rule", "a security rule with a bad port, priority or duplicate priority";
    DataLakeTarget = "E043", "data-lake-target", "a Data Lake folder on a store that cannot hold it";
    VerifyAction = "E044", "verify-action", "a verify check with no action, several actions, or an action on the wrong resource";
    DataLakeGrant = "E045", "data-lake-grant", "a Gen2 Data Lake folder whose account gives the deploying principal no Storage Blob Data Owner in the plan";
    FileTooLarge = "E046", "file-too-large", "a plan or variable file over the size limit (--max-plan-size), or not a file";
    MultipleDocuments = "E047", "multiple-documents", "a plan file that holds more than one YAML document";
    YamlLimit = "E048", "yaml-limit", "YAML nested too deeply, or with too many nodes, anchors or aliases";
    FileOutsidePlan = "E049", "file-outside-plan", "a file path that leads outside the plan file's directory";
    DotSegment = "E050", "dot-segment", "a `.` or `..` segment in a blob name or Data Lake path";
}

/// One problem in a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Diag {
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    /// Where the problem is; `None` only for problems that belong to no text (command-line
    /// input), which are rendered without a snippet.
    pub span: Option<Span>,
    /// Text under the caret.
    pub label: String,
    /// Secondary places that explain the problem (the other end of a cycle, the first key).
    pub related: Vec<(Span, String)>,
    pub help: Option<String>,
}

impl Diag {
    pub fn error(code: Code, span: Span, message: impl Into<String>) -> Diag {
        Diag {
            code,
            severity: Severity::Error,
            message: message.into(),
            span: Some(span),
            label: String::new(),
            related: Vec::new(),
            help: None,
        }
    }

    pub fn warning(code: Code, span: Span, message: impl Into<String>) -> Diag {
        Diag { severity: Severity::Warning, ..Diag::error(code, span, message) }
    }

    /// A problem with no place in the file (e.g. a bad `--var`).
    pub fn detached(code: Code, message: impl Into<String>) -> Diag {
        Diag { span: None, ..Diag::error(code, Span::default(), message) }
    }

    pub fn label(mut self, label: impl Into<String>) -> Diag {
        self.label = label.into();
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Diag {
        self.help = Some(help.into());
        self
    }

    pub fn related(mut self, span: Span, label: impl Into<String>) -> Diag {
        self.related.push((span, label.into()));
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The closest candidate to `word` by edit distance, if it is close enough to be a typo.
pub fn suggest<'a, I: IntoIterator<Item = &'a str>>(word: &str, candidates: I) -> Option<&'a str> {
    let lw = word.to_ascii_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        let d = edit_distance(&lw, &c.to_ascii_lowercase());
        let limit = (c.chars().count().max(word.chars().count()) / 3).max(1);
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// Levenshtein distance over chars, with adjacent transpositions counted as one edit.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev2 = vec![0usize; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0usize; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(prev2[j - 2] + 1);
            }
            cur[j] = v;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_sorted_and_unique() {
        let codes: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        let mut sorted = codes.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(codes, sorted);
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("identitys", ["identity", "name"]), Some("identity"));
        assert_eq!(suggest("Raeder", ["Reader", "Owner"]), Some("Reader"));
        assert_eq!(suggest("zzzzzz", ["identity", "name"]), None);
        assert_eq!(edit_distance("ab", "ba"), 1);
    }
}
