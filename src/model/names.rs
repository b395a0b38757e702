//! Azure naming rules, one function per rule (see `arm-contract.md`). Each returns the
//! reason a name is refused, written as a short phrase for a diagnostic.
//!
//! Imports: nothing. No I/O. Deterministic.

/// The rule a check broke, as text for the diagnostic.
pub type Rule = Result<(), String>;

fn len_between(name: &str, min: usize, max: usize, what: &str) -> Rule {
    let n = name.chars().count();
    if n < min || n > max {
        return Err(format!("{what} must be {min} to {max} characters long, this one has {n}"));
    }
    Ok(())
}

/// Resource group: 1–90 characters of letters, digits, `-`, `_`, `.`, `(`, `)`; not ending in `.`.
///
/// ```
/// use idlab::model::names::resource_group;
/// assert!(resource_group("myResourceGroupVM").is_ok());
/// assert!(resource_group("bad.").is_err());
/// ```
pub fn resource_group(name: &str) -> Rule {
    len_between(name, 1, 90, "a resource group name")?;
    if let Some(c) = name.chars().find(|c| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')'))) {
        return Err(format!(
            "a resource group name may only hold letters, digits, '-', '_', '.', '(' and ')', not {c:?}"
        ));
    }
    if name.ends_with('.') {
        return Err("a resource group name may not end with '.'".into());
    }
    Ok(())
}

/// User-assigned identity: 3–128 characters, letters, digits, `-`, `_`, starting with a letter or digit.
pub fn user_assigned_identity(name: &str) -> Rule {
    len_between(name, 3, 128, "an identity name")?;
    if !name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric()) {
        return Err("an identity name must start with a letter or a digit".into());
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))) {
        return Err(format!("an identity name may only hold letters, digits, '-' and '_', not {c:?}"));
    }
    Ok(())
}

/// The extra limit the tutorials give for an identity assigned to a VM or scale set.
pub const IDENTITY_ON_VM_MAX: usize = 24;

/// Storage account: 3–24 lowercase letters and digits.
///
/// ```
/// use idlab::model::names::storage_account;
/// assert!(storage_account("idlabdata01").is_ok());
/// assert!(storage_account("IdLab").is_err());
/// ```
pub fn storage_account(name: &str) -> Rule {
    len_between(name, 3, 24, "a storage account name")?;
    if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return Err("a storage account name may only hold lowercase letters and digits".into());
    }
    Ok(())
}

/// Data Lake Store (Gen1) account: 3–24 lowercase letters and digits.
pub fn data_lake_store(name: &str) -> Rule {
    len_between(name, 3, 24, "a Data Lake Store name")?;
    if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return Err("a Data Lake Store name may only hold lowercase letters and digits".into());
    }
    Ok(())
}

/// Key vault: 3–24 letters, digits and hyphens; starts with a letter; ends with a letter or
/// digit; no `--`.
pub fn key_vault(name: &str) -> Rule {
    len_between(name, 3, 24, "a key vault name")?;
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err("a key vault name may only hold letters, digits and '-'".into());
    }
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err("a key vault name must start with a letter".into());
    }
    if name.ends_with('-') {
        return Err("a key vault name must end with a letter or a digit".into());
    }
    if name.contains("--") {
        return Err("a key vault name may not hold consecutive hyphens".into());
    }
    Ok(())
}

const VM_FORBIDDEN: &str = "~!@#$%^&*()=+_[]{}\\|;:.'\",<>/?` ";

/// Virtual machine resource name: 1–64 characters, none of Azure's forbidden characters,
/// not starting with `_`, not ending with `.` or `-`.
pub fn virtual_machine(name: &str) -> Rule {
    len_between(name, 1, 64, "a virtual machine name")?;
    if let Some(c) = name.chars().find(|c| VM_FORBIDDEN.contains(*c) || c.is_control()) {
        return Err(format!("a virtual machine name may not hold {c:?}"));
    }
    if name.ends_with('-') {
        return Err("a virtual machine name may not end with '-'".into());
    }
    Ok(())
}

/// Computer (host) name: Windows 1–15 and not only digits; Linux 1–64.
pub fn computer_name(name: &str, windows: bool) -> Rule {
    let max = if windows { 15 } else { 64 };
    let what = if windows { "a Windows computer name" } else { "a Linux computer name" };
    len_between(name, 1, max, what)?;
    if let Some(c) = name.chars().find(|c| VM_FORBIDDEN.contains(*c) || c.is_control()) {
        return Err(format!("{what} may not hold {c:?}"));
    }
    if windows && name.chars().all(|c| c.is_ascii_digit()) {
        return Err("a Windows computer name may not be only digits".into());
    }
    Ok(())
}

/// SQL server: 1–63 lowercase letters, digits and hyphens, not starting or ending with `-`.
pub fn sql_server(name: &str) -> Rule {
    len_between(name, 1, 63, "a SQL server name")?;
    if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return Err("a SQL server name may only hold lowercase letters, digits and '-'".into());
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err("a SQL server name may not start or end with '-'".into());
    }
    Ok(())
}

/// SQL database: 1–128 characters, none of `<>*%&:\/?` or control characters, not ending
/// with `.` or a space.
pub fn sql_database(name: &str) -> Rule {
    len_between(name, 1, 128, "a SQL database name")?;
    if let Some(c) = name.chars().find(|c| "<>*%&:\\/?".contains(*c) || c.is_control()) {
        return Err(format!("a SQL database name may not hold {c:?}"));
    }
    if name.ends_with('.') || name.ends_with(' ') {
        return Err("a SQL database name may not end with '.' or a space".into());
    }
    Ok(())
}

/// Blob container: 3–63 lowercase letters, digits and hyphens, starting and ending with a
/// letter or digit, no `--`.
pub fn blob_container(name: &str) -> Rule {
    len_between(name, 3, 63, "a container name")?;
    if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return Err("a container name may only hold lowercase letters, digits and '-'".into());
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err("a container name must start and end with a letter or a digit".into());
    }
    if name.contains("--") {
        return Err("a container name may not hold consecutive hyphens".into());
    }
    Ok(())
}

/// Blob: 1–1024 characters, not ending with `.` or `/`.
pub fn blob(name: &str) -> Rule {
    len_between(name, 1, 1024, "a blob name")?;
    if name.ends_with('.') || name.ends_with('/') {
        return Err("a blob name may not end with '.' or '/'".into());
    }
    Ok(())
}

/// The first `.` or `..` segment of a blob name or Data Lake path (split at `/` and `\`,
/// percent-encoded dots included), with its byte offset: Azure and idlab refuse them.
///
/// ```
/// use idlab::model::names::dot_segment;
/// assert_eq!(dot_segment("/a/../b"), Some((3, "..")));
/// assert_eq!(dot_segment("%2e%2E/x"), Some((0, "%2e%2E")));
/// assert_eq!(dot_segment("a/.hidden/b.txt"), None);
/// ```
pub fn dot_segment(path: &str) -> Option<(usize, &str)> {
    let mut at = 0;
    for seg in path.split(['/', '\\']) {
        let decoded = seg.to_ascii_lowercase().replace("%2e", ".");
        if decoded == "." || decoded == ".." {
            return Some((at, seg));
        }
        at += seg.len() + 1;
    }
    None
}

/// Key Vault secret: 1–127 letters, digits and hyphens.
pub fn key_vault_secret(name: &str) -> Rule {
    len_between(name, 1, 127, "a secret name")?;
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err("a secret name may only hold letters, digits and '-'".into());
    }
    Ok(())
}

/// Network resources (vnet, subnet, NSG, rule, public IP, NIC): 1–80 letters, digits, `_`,
/// `.`, `-`; starting with a letter or digit; ending with a letter, digit or `_`.
pub fn network(name: &str, what: &str) -> Rule {
    len_between(name, 1, 80, what)?;
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        return Err(format!("{what} may only hold letters, digits, '_', '.' and '-'"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(format!("{what} must start with a letter or a digit"));
    }
    if !name.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("{what} must end with a letter, a digit or '_'"));
    }
    Ok(())
}

/// A logical resource name in a plan (the key under `resources:`).
pub fn logical(name: &str) -> Rule {
    if name.is_empty() || name.len() > 64 {
        return Err("a logical name must be 1 to 64 characters long".into());
    }
    if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        return Err("a logical name must start with a letter or '_'".into());
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err("a logical name may only hold letters, digits, '_' and '-'".into());
    }
    if matches!(name, "var" | "env" | "caller" | "self") {
        return Err(format!("'{name}' is reserved for references"));
    }
    Ok(())
}

/// Whether `s` is a GUID in the 8-4-4-4-12 hex form.
///
/// ```
/// use idlab::model::names::is_guid;
/// assert!(is_guid("acdd72a7-3385-48ef-bd42-f606fba81ae7"));
/// assert!(!is_guid("acdd72a7"));
/// ```
pub fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts.iter().zip([8, 4, 4, 4, 12]).all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Azure public-cloud regions (programmatic names), for the location check.
pub const LOCATIONS: &[&str] = &[
    "australiacentral",
    "australiacentral2",
    "australiaeast",
    "australiasoutheast",
    "austriaeast",
    "belgiumcentral",
    "brazilsouth",
    "brazilsoutheast",
    "canadacentral",
    "canadaeast",
    "centralindia",
    "centralus",
    "chilecentral",
    "eastasia",
    "eastus",
    "eastus2",
    "francecentral",
    "francesouth",
    "germanynorth",
    "germanywestcentral",
    "indonesiacentral",
    "israelcentral",
    "italynorth",
    "japaneast",
    "japanwest",
    "jioindiacentral",
    "jioindiawest",
    "koreacentral",
    "koreasouth",
    "malaysiawest",
    "mexicocentral",
    "newzealandnorth",
    "northcentralus",
    "northeurope",
    "norwayeast",
    "norwaywest",
    "polandcentral",
    "qatarcentral",
    "southafricanorth",
    "southafricawest",
    "southcentralus",
    "southeastasia",
    "southindia",
    "spaincentral",
    "swedencentral",
    "switzerlandnorth",
    "switzerlandwest",
    "uaecentral",
    "uaenorth",
    "uksouth",
    "ukwest",
    "westcentralus",
    "westeurope",
    "westindia",
    "westus",
    "westus2",
    "westus3",
];

/// Normalise a display name such as "East US" to its programmatic form "eastus".
pub fn normalize_location(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_rules() {
        assert!(user_assigned_identity("ID1").is_ok());
        assert!(user_assigned_identity("_id").is_err());
        assert!(user_assigned_identity("id.1").is_err());
        assert!(user_assigned_identity("ab").is_err());
    }

    #[test]
    fn vault_rules() {
        assert!(key_vault("idlab-kv-01").is_ok());
        assert!(key_vault("1kv").is_err());
        assert!(key_vault("kv--x").is_err());
        assert!(key_vault("kv-").is_err());
    }

    #[test]
    fn computer_names() {
        assert!(computer_name("myVM", true).is_ok());
        assert!(computer_name("a-very-long-windows-name", true).is_err());
        assert!(computer_name("12345", true).is_err());
        assert!(computer_name("12345", false).is_ok());
    }

    #[test]
    fn locations_normalise() {
        assert_eq!(normalize_location("East US"), "eastus");
        assert!(LOCATIONS.windows(2).all(|w| w[0] < w[1]));
    }
}
