//! Instances: how a kind's Azure name takes an instance's suffix when its uniqueness scope is
//! not inside a resource the instance owns (resource groups, globally named accounts, custom
//! role names). The kind declares it ([`super::Kind::instance_name`]); `resolve` applies it.
//! Pure.

/// How a name is suffixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suffix {
    /// `name-instance` (the instance as written).
    Dash,
    /// `name-instance`, the instance in lowercase (names that allow no capitals).
    DashLower,
    /// `nameinstance`, only the instance's letters and digits, lowercased (storage accounts,
    /// Data Lake stores: lowercase letters and digits only).
    Alnum,
}

/// What a kind declares about its name under instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceName {
    /// The YAML field holding the name (`name`; `role_name` for custom roles).
    pub field: &'static str,
    pub suffix: Suffix,
    /// The longest name Azure accepts, in characters.
    pub max: usize,
    /// What the name is unique in, for messages ("the subscription", "Azure").
    pub scope: &'static str,
}

/// The YAML field naming the group a resource sits in.
pub const GROUP_FIELD: &str = "resource_group";

/// The suffix every other name gets when it needs one: a resource in a group the instance
/// does not own.
pub const IN_FOREIGN_GROUP: InstanceName = InstanceName {
    field: "name",
    suffix: Suffix::Dash,
    max: usize::MAX,
    scope: "a resource group the plan does not own",
};

impl InstanceName {
    /// `name` with `instance` appended by the kind's rule, or why it does not fit.
    ///
    /// ```
    /// use idlab::kinds::instance::{InstanceName, Suffix};
    /// let rg = InstanceName { field: "name", suffix: Suffix::Dash, max: 90, scope: "the subscription" };
    /// assert_eq!(rg.fit("myResourceGroupVM", "01").unwrap(), "myResourceGroupVM-01");
    /// let sa = InstanceName { field: "name", suffix: Suffix::Alnum, max: 24, scope: "Azure" };
    /// assert_eq!(sa.fit("idlabtutorials", "A-1").unwrap(), "idlabtutorialsa1");
    /// assert!(sa.fit("idlabtutorialsxxxxxxxxxx", "01").is_err());
    /// ```
    ///
    /// # Errors
    /// The name with its suffix is longer than the kind allows.
    pub fn fit(&self, name: &str, instance: &str) -> Result<String, String> {
        let out = match self.suffix {
            Suffix::Dash => format!("{name}-{instance}"),
            Suffix::DashLower => format!("{name}-{}", instance.to_ascii_lowercase()),
            Suffix::Alnum => {
                let tail: String =
                    instance.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect();
                format!("{name}{tail}")
            }
        };
        let n = out.chars().count();
        if n > self.max {
            return Err(format!(
                "`{name}` is unique in {} and takes the instance as `{out}`: {n} characters, over the limit of {}",
                self.scope, self.max
            ));
        }
        Ok(out)
    }
}

/// Whether `s` is a usable instance name: 1 to 16 ASCII letters, digits and `-`, starting
/// and ending with a letter or digit.
///
/// ```
/// use idlab::kinds::instance::check_instance;
/// assert!(check_instance("03").is_ok());
/// assert!(check_instance("-x").is_err());
/// assert!(check_instance("a b").is_err());
/// ```
///
/// # Errors
/// Why it is not.
pub fn check_instance(s: &str) -> Result<(), String> {
    let ok_len = (1..=16).contains(&s.len());
    let ok_chars = s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let ok_ends = !s.starts_with('-') && !s.ends_with('-');
    if ok_len && ok_chars && ok_ends {
        Ok(())
    } else {
        Err(format!(
            "instance `{}`: an instance name is 1 to 16 letters, digits and '-', not starting or ending with '-'",
            s.escape_debug()
        ))
    }
}

/// The instance names of `--instances N`: `01`..`N`, zero-padded to N's width (at least 2).
///
/// ```
/// assert_eq!(idlab::kinds::instance::numbered(3), vec!["01", "02", "03"]);
/// assert_eq!(idlab::kinds::instance::numbered(100)[0], "001");
/// ```
pub fn numbered(n: usize) -> Vec<String> {
    let width = n.to_string().len().max(2);
    (1..=n).map(|i| format!("{i:0width$}")).collect()
}

/// What creating one resource takes from a subscription's quotas (the pre-flight check of a
/// fleet apply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Demand {
    /// One of the subscription's resource groups.
    ResourceGroup,
    /// One storage account in a region.
    StorageAccount { location: String },
    /// One role assignment in the subscription.
    RoleAssignment,
    /// A VM of `size` in a region: its vCPUs.
    Vm { location: String, size: String },
}
