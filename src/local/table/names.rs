//! Azure's naming rules for the resource types the local cloud creates through the generic
//! handler, the server's own copy (the client's rules in `model::names` are never imported:
//! each side keeps the other honest). Sources: Azure's "Naming rules and restrictions for
//! Azure resources" (learn.microsoft.com, azure-resource-manager/management/resource-name-rules)
//! for lengths and characters. Storage accounts, vaults, SQL servers, Data Lake Store accounts
//! and resource groups keep the checks (and Azure's codes) their own providers had before
//! (`AccountNameInvalid`, `VaultNameNotValid`, `InvalidResourceName`,
//! `InvalidResourceGroupName`); every other type answers ARM's 400 `InvalidResourceName`.
//!
//! Whatever the type, a name with a character no Azure resource name may hold (`/`, `\`,
//! `?`, `#`, `%`, control characters; a `..%2F..%2Fx` segment decodes to `../../x`) or
//! that is `.` or `..` is refused.

/// A type's rule: lengths and what each character, the first and the last may be.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub min: usize,
    pub max: usize,
    /// Characters allowed besides ASCII letters and digits.
    pub also: &'static str,
    /// Only lower-case letters.
    pub lower: bool,
    /// The first character is a letter or digit.
    pub start_alnum: bool,
    /// Characters the name may not end with.
    pub not_end: &'static str,
    /// What Azure says the name may be (the error message's second half).
    pub says: &'static str,
}

const NETWORK: Rule = Rule {
    min: 1,
    max: 80,
    also: "_.-",
    lower: false,
    start_alnum: true,
    not_end: ".-",
    says: "The name can be up to 80 characters long. It must begin with a word character, and it must end with a word character or with '_'. The name may contain word characters or '.', '-', '_'.",
};

/// The rule of a type (lower-cased type name), when the local cloud checks it here.
pub fn rule(type_lower: &str) -> Option<Rule> {
    Some(match type_lower {
        "microsoft.managedidentity/userassignedidentities" => Rule {
            min: 3,
            max: 128,
            also: "-_",
            lower: false,
            start_alnum: true,
            not_end: "",
            says: "The name can be 3 to 128 characters long. It can contain only alphanumeric characters, hyphens and underscores, and must start with a letter or a number.",
        },
        "microsoft.managedidentity/userassignedidentities/federatedidentitycredentials" => Rule {
            min: 3,
            max: 120,
            also: "-_",
            lower: false,
            start_alnum: true,
            not_end: "",
            says: "The name can be 3 to 120 characters long. It can contain only alphanumeric characters, hyphens and underscores, and must start with a letter or a number.",
        },
        "microsoft.network/virtualnetworks" => Rule { min: 2, max: 64, ..NETWORK },
        "microsoft.network/virtualnetworks/subnets"
        | "microsoft.network/networksecuritygroups"
        | "microsoft.network/publicipaddresses"
        | "microsoft.network/networkinterfaces" => NETWORK,
        "microsoft.compute/virtualmachines" => Rule {
            min: 1,
            max: 64,
            also: "-.",
            lower: false,
            start_alnum: true,
            not_end: ".-",
            says: "The name can be 1 to 64 characters long, may contain letters, digits, '-' and '.', must start with a letter or digit and cannot end with '.' or '-'.",
        },
        "microsoft.storage/storageaccounts/blobservices/containers" => Rule {
            min: 3,
            max: 63,
            also: "-",
            lower: true,
            start_alnum: true,
            not_end: "-",
            says: "Container names can be 3 to 63 characters long, contain only lower-case letters, numbers and hyphens, start with a letter or number, and cannot contain two consecutive hyphens.",
        },
        "microsoft.sql/servers/databases" => Rule {
            min: 1,
            max: 128,
            also: "-_. ()[]{}!@$^+=,;'~`",
            lower: false,
            start_alnum: false,
            not_end: ". ",
            says: "The name can be 1 to 128 characters long, cannot contain '<', '>', '*', '%', '&', ':', '\\', '/', '?' or control characters, and cannot end with a period or a space.",
        },
        _ => return None,
    })
}

/// Why `name` is not a name Azure accepts for any resource: a path separator, a character
/// URLs cannot carry in a segment, a control character, or a relative segment.
pub fn never_valid(name: &str) -> bool {
    name.is_empty()
        || name == "."
        || name == ".."
        || name.chars().any(|c| c.is_control() || matches!(c, '/' | '\\' | '?' | '#' | '%'))
}

/// Whether `name` follows `rule`.
pub fn follows(rule: &Rule, name: &str) -> bool {
    let n = name.chars().count();
    let first = name.chars().next();
    let last = name.chars().last();
    (rule.min..=rule.max).contains(&n)
        && name.chars().all(|c| {
            (c.is_ascii_digit() || (c.is_ascii_alphabetic() && (!rule.lower || c.is_ascii_lowercase())))
                || rule.also.contains(c)
        })
        && (!rule.start_alnum || first.is_some_and(|c| c.is_ascii_alphanumeric()))
        && !last.is_some_and(|c| rule.not_end.contains(c))
        && !(rule.lower && name.contains("--"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities() {
        let r = rule("microsoft.managedidentity/userassignedidentities").unwrap_or(NETWORK);
        for ok in ["abc", "id-app_1", "0x_", "A1-"] {
            assert!(follows(&r, ok), "{ok}");
        }
        for bad in ["ab", "-abc", "_abc", "a.b", "a b", "../../x", &"a".repeat(129)] {
            assert!(!follows(&r, bad), "{bad}");
        }
        assert!(never_valid("../../x") && never_valid("..") && never_valid("a%2Fb") && !never_valid("a.b"));
    }

    #[test]
    fn containers_and_networks() {
        let c = rule("microsoft.storage/storageaccounts/blobservices/containers").unwrap_or(NETWORK);
        assert!(follows(&c, "data-1") && !follows(&c, "Data") && !follows(&c, "a--b") && !follows(&c, "ab"));
        assert!(follows(&NETWORK, "vnet_1.x") && !follows(&NETWORK, "vnet.") && !follows(&NETWORK, ".vnet"));
    }
}
