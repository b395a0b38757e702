//! Azure resource ids: parsing, scopes and case-insensitive comparison.
//!
//! `/subscriptions/{s}[/resourceGroups/{rg}][/providers/{ns}/{type}/{name}[/{type}/{name}]…]`
//! possibly followed by extension segments `/providers/{ns}/{type}/{name}` (role
//! assignments at a resource scope). ARM compares ids case-insensitively but keeps the
//! casing it was first given (arm-contract §10).
//!
//! Imports: nothing. No I/O. Deterministic.

use std::fmt;

/// A parsed resource id (or scope).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceId {
    raw: String,
    pub subscription: String,
    pub resource_group: Option<String>,
    /// The provider segments, outermost first: `(namespace, [(type, name), …])`.
    pub providers: Vec<(String, Vec<(String, String)>)>,
}

/// Why a string is not a resource id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdError(pub String);

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for IdError {}

impl ResourceId {
    /// Parse an id; a trailing `/` is ignored.
    ///
    /// ```
    /// use idlab::arm::id::ResourceId;
    /// let id = ResourceId::parse("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/a").unwrap();
    /// assert_eq!(id.resource_type().as_deref(), Some("Microsoft.Network/virtualNetworks/subnets"));
    /// assert_eq!(id.name(), Some("a"));
    /// assert_eq!(id.resource_group.as_deref(), Some("rg"));
    /// ```
    ///
    /// # Errors
    /// An [`IdError`] naming what is missing or out of place.
    pub fn parse(s: &str) -> Result<ResourceId, IdError> {
        let trimmed = s.trim_end_matches('/');
        let segs: Vec<&str> = trimmed.split('/').collect();
        if segs.first() != Some(&"") || segs.len() < 3 || !segs[1].eq_ignore_ascii_case("subscriptions") {
            return Err(IdError(format!("`{s}` does not start with /subscriptions/{{id}}")));
        }
        let subscription = segs[2].to_string();
        if subscription.is_empty() {
            return Err(IdError(format!("`{s}` has an empty subscription id")));
        }
        let mut i = 3;
        let mut resource_group = None;
        if segs.len() > i && segs[i].eq_ignore_ascii_case("resourceGroups") {
            let name = segs
                .get(i + 1)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| IdError(format!("`{s}` names no resource group")))?;
            resource_group = Some(name.to_string());
            i += 2;
        }
        let mut providers = Vec::new();
        while i < segs.len() {
            if !segs[i].eq_ignore_ascii_case("providers") {
                return Err(IdError(format!("`{s}`: expected `providers` at segment {}", i)));
            }
            let ns = segs
                .get(i + 1)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| IdError(format!("`{s}` has no provider namespace")))?;
            i += 2;
            let mut pairs = Vec::new();
            while i + 1 < segs.len() && !segs[i].eq_ignore_ascii_case("providers") {
                if segs[i].is_empty() || segs[i + 1].is_empty() {
                    return Err(IdError(format!("`{s}` has an empty segment")));
                }
                pairs.push((segs[i].to_string(), segs[i + 1].to_string()));
                i += 2;
            }
            if pairs.is_empty() || (i < segs.len() && !segs[i].eq_ignore_ascii_case("providers")) {
                return Err(IdError(format!("`{s}`: a type without a name")));
            }
            providers.push((ns.to_string(), pairs));
        }
        Ok(ResourceId { raw: trimmed.to_string(), subscription, resource_group, providers })
    }

    /// The id as given (original casing, no trailing slash).
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The lower-cased id, for comparison and map keys.
    pub fn key(&self) -> String {
        self.raw.to_ascii_lowercase()
    }

    /// The full type of the innermost resource, e.g. `Microsoft.Compute/virtualMachines`;
    /// `None` for a subscription or resource group.
    pub fn resource_type(&self) -> Option<String> {
        let (ns, pairs) = self.providers.last()?;
        let types: Vec<&str> = pairs.iter().map(|(t, _)| t.as_str()).collect();
        Some(format!("{ns}/{}", types.join("/")))
    }

    /// The innermost name (resource, group or subscription).
    pub fn name(&self) -> Option<&str> {
        match self.providers.last() {
            Some((_, pairs)) => pairs.last().map(|(_, n)| n.as_str()),
            None => self.resource_group.as_deref().or(Some(self.subscription.as_str())),
        }
    }

    /// The parent id: drop the innermost `type/name` pair (or the provider block, or the
    /// group). `None` for a subscription.
    pub fn parent(&self) -> Option<ResourceId> {
        let cut = self.raw.rfind('/')?;
        let up = &self.raw[..cut];
        let cut2 = up.rfind('/')?;
        let mut parent = &up[..cut2];
        // `/…/providers/{ns}` is not an id of its own.
        if let Some(p) = parent.to_ascii_lowercase().rfind("/providers/")
            && !parent[p + 11..].contains('/')
        {
            parent = &parent[..p];
        }
        if parent.is_empty() { None } else { ResourceId::parse(parent).ok() }
    }

    /// Whether `self` is `other` or one of its ancestors (segment-boundary prefix,
    /// case-insensitive). Scopes inherit downwards.
    ///
    /// ```
    /// use idlab::arm::id::ResourceId;
    /// let rg = ResourceId::parse("/subscriptions/s/resourceGroups/rg").unwrap();
    /// let vm = ResourceId::parse("/subscriptions/s/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/vm").unwrap();
    /// let other = ResourceId::parse("/subscriptions/s/resourceGroups/rg2").unwrap();
    /// assert!(rg.contains(&vm));
    /// assert!(!other.contains(&vm));
    /// ```
    pub fn contains(&self, other: &ResourceId) -> bool {
        is_scope_prefix(&self.raw, &other.raw)
    }
}

/// Whether scope `a` is `b` or an ancestor of `b` (case-insensitive, on segment boundaries).
pub fn is_scope_prefix(a: &str, b: &str) -> bool {
    let a = a.trim_end_matches('/');
    let b = b.trim_end_matches('/');
    if a.is_empty() {
        return true;
    }
    b.len() >= a.len()
        && b.is_char_boundary(a.len())
        && b[..a.len()].eq_ignore_ascii_case(a)
        && (b.len() == a.len() || b.as_bytes()[a.len()] == b'/')
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_extension_resources() {
        let id = ResourceId::parse(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/a/providers/Microsoft.Authorization/roleAssignments/g",
        )
        .expect("valid");
        assert_eq!(id.resource_type().as_deref(), Some("Microsoft.Authorization/roleAssignments"));
        assert_eq!(id.name(), Some("g"));
        let parent = id.parent().expect("parent");
        assert_eq!(parent.as_str(), "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/a");
        assert_eq!(
            parent.parent().map(|p| p.as_str().to_string()).as_deref(),
            Some("/subscriptions/s/resourceGroups/rg")
        );
    }

    #[test]
    fn rejects_malformed() {
        assert!(ResourceId::parse("/subscriptions/").is_err());
        assert!(ResourceId::parse("/foo/s").is_err());
        assert!(ResourceId::parse("/subscriptions/s/resourceGroups").is_err());
        assert!(ResourceId::parse("/subscriptions/s/providers/Microsoft.X/t").is_err());
        assert!(ResourceId::parse("/subscriptions/s/resourceGroups/rg/bogus/x").is_err());
    }

    #[test]
    fn scope_prefix_is_on_segment_boundaries() {
        assert!(is_scope_prefix(
            "/subscriptions/s/resourceGroups/rg",
            "/SUBSCRIPTIONS/s/resourcegroups/RG/providers/x/y/z"
        ));
        assert!(!is_scope_prefix("/subscriptions/s/resourceGroups/rg", "/subscriptions/s/resourceGroups/rg2"));
        assert!(is_scope_prefix("/", "/subscriptions/s") || is_scope_prefix("", "/subscriptions/s"));
    }
}
