//! The ARM header every resource-group-scoped kind shares: `name`, `resource_group`,
//! `location`, `tags` and `depends_on`, declared once by `arm_spec!` and read through
//! [`ArmHeader`].
//!
//! The fields stay plain fields of each spec (not a `#[serde(flatten)]`ed struct): spans and
//! `deny_unknown_fields` do not survive flattening, and the generated schema must not change.
//! So `arm_spec!` writes them into the spec's declaration, in the order the schema has
//! always had them (`type`, `name`, `resource_group`, `location`, the kind's own fields,
//! `tags`, `depends_on`), and gives the spec an `arm_header()` view.
//!
//! Imports: model. Pure.

use crate::model::{Code, Sp, SpMap};

use super::Cx;
use super::env::Env;

/// A view of a spec's ARM header fields.
#[derive(Debug, Clone, Copy)]
pub struct ArmHeader<'a> {
    pub name: &'a Sp<String>,
    pub resource_group: &'a Sp<String>,
    pub location: &'a Option<Sp<String>>,
    pub tags: &'a Option<SpMap<Sp<String>>>,
    pub depends_on: &'a [Sp<String>],
}

impl ArmHeader<'_> {
    /// Check the header: the name against the kind's rule (reported with `code`), the group,
    /// the location, and the tags (names up to `max_tag_name` characters).
    pub fn validate(
        &self,
        cx: &mut Cx<'_>,
        code: Code,
        rule: impl Fn(&str) -> crate::model::names::Rule,
        max_tag_name: usize,
    ) {
        cx.name_rule(self.name, code, rule);
        cx.resource_group(self.resource_group);
        cx.location(self.location);
        cx.tags(self.tags, max_tag_name);
    }

    /// The resource's id: `{group id}/providers/{provider_type}/{name}`, and its name (either
    /// may hold `(known after apply)`).
    pub fn id(&self, env: &Env<'_>, provider_type: &str) -> (String, String) {
        let rg = env.group_id(self.resource_group).or_unknown();
        let name = env.resolve(self.name).or_unknown();
        (format!("{rg}/providers/{provider_type}/{name}"), name)
    }

    /// What makes two declarations the same Azure object: (ARM type, group, name).
    pub fn key(&self, arm_type: &str) -> String {
        super::arm_key(arm_type, self.resource_group, self.name)
    }
}

/// Declares a spec with the ARM header fields around the kind's own, and its `arm_header()`.
/// The `name` and `tags` docs are the kind's (naming rules and tag limits differ); they are
/// written first (`name;` then `tags;`), then the kind's own fields, but the struct (and so
/// the schema) keeps the order `type`, `name`, `resource_group`, `location`, own fields,
/// `tags`, `depends_on`.
macro_rules! arm_spec {
    (
        $(#[$meta:meta])*
        pub struct $spec:ident {
            $(#[$name_doc:meta])*
            name;
            $(#[$tags_doc:meta])*
            tags;
            $( $(#[$fmeta:meta])* $fvis:vis $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        pub struct $spec {
            #[serde(rename = "type")]
            #[schemars(skip)]
            pub kind: $crate::model::Sp<String>,
            $(#[$name_doc])*
            pub name: $crate::model::Sp<String>,
            /// The resource group: `${rg}` or the name of an existing group.
            pub resource_group: $crate::model::Sp<String>,
            /// Region; defaults to the plan's `location`.
            #[serde(default)]
            pub location: Option<$crate::model::Sp<String>>,
            $( $(#[$fmeta])* $fvis $field: $ty, )*
            $(#[$tags_doc])*
            #[serde(default)]
            pub tags: Option<$crate::model::SpMap<$crate::model::Sp<String>>>,
            /// Logical names this resource must wait for, beyond its references.
            #[serde(default)]
            pub depends_on: Vec<$crate::model::Sp<String>>,
        }

        impl $spec {
            /// The ARM header fields.
            pub fn arm_header(&self) -> $crate::kinds::header::ArmHeader<'_> {
                $crate::kinds::header::ArmHeader {
                    name: &self.name,
                    resource_group: &self.resource_group,
                    location: &self.location,
                    tags: &self.tags,
                    depends_on: &self.depends_on,
                }
            }
        }
    };
}
pub(crate) use arm_spec;
