//! The api-versions of the provider table (and of the front door's own routes): every version Azure
//! publishes for it (arm-contract §0.2), because unmodified SDKs send their own, usually newer.

pub(super) const RESOURCES: &[&str] = &[
    "2015-11-01",
    "2016-02-01",
    "2016-07-01",
    "2016-09-01",
    "2017-05-10",
    "2018-02-01",
    "2018-05-01",
    "2019-03-01",
    "2019-05-01",
    "2019-05-10",
    "2019-07-01",
    "2019-08-01",
    "2019-10-01",
    "2020-06-01",
    "2020-08-01",
    "2020-10-01",
    "2021-01-01",
    "2021-04-01",
    "2022-09-01",
    "2023-07-01",
    "2024-03-01",
    "2024-07-01",
    "2024-11-01",
    "2025-03-01",
    "2025-04-01",
];

pub(super) const SUBSCRIPTIONS: &[&str] =
    &["2015-11-01", "2016-06-01", "2018-06-01", "2019-06-01", "2019-11-01", "2020-01-01", "2021-01-01", "2022-12-01"];

/// Federated identity credentials: from 2022-01-31-preview on (2023-01-31 is the first GA).
pub(super) const FEDERATED: &[&str] =
    &["2023-01-31", "2024-11-30", "2022-01-31-preview", "2023-07-31-preview", "2025-01-31-preview"];

pub(super) const MSI: &[&str] = &[
    "2018-11-30",
    "2023-01-31",
    "2024-11-30",
    "2026-04-30",
    "2026-05-31",
    "2015-08-31-preview",
    "2021-09-30-preview",
    "2022-01-31-preview",
    "2023-07-31-preview",
    "2025-01-31-preview",
    "2025-05-31-preview",
];

pub(super) const COMPUTE: &[&str] = &[
    "2015-06-15",
    "2016-03-30",
    "2017-03-30",
    "2017-12-01",
    "2018-04-01",
    "2018-06-01",
    "2018-10-01",
    "2019-03-01",
    "2019-07-01",
    "2019-12-01",
    "2020-06-01",
    "2020-12-01",
    "2021-03-01",
    "2021-04-01",
    "2021-07-01",
    "2021-11-01",
    "2022-03-01",
    "2022-08-01",
    "2022-11-01",
    "2023-03-01",
    "2023-07-01",
    "2023-09-01",
    "2024-03-01",
    "2024-07-01",
    "2024-11-01",
    "2025-04-01",
    "2025-11-01",
    "2026-03-01",
    "2026-04-01",
    "2016-04-30-preview",
];

/// The DiskRP's own api-versions (`Microsoft.Compute/disks`; azure-rest-api-specs
/// `specification/compute/resource-manager/Microsoft.Compute/DiskRP/`).
pub(super) const DISKS: &[&str] = &[
    "2017-03-30",
    "2018-04-01",
    "2018-06-01",
    "2018-09-30",
    "2019-03-01",
    "2019-07-01",
    "2019-11-01",
    "2020-05-01",
    "2020-06-30",
    "2020-09-30",
    "2020-12-01",
    "2021-04-01",
    "2021-08-01",
    "2021-12-01",
    "2022-03-02",
    "2022-07-02",
    "2023-01-02",
    "2023-04-02",
    "2023-10-02",
    "2024-03-02",
    "2025-01-02",
    "2016-04-30-preview",
];

pub(super) const NETWORK: &[&str] = &[
    "2015-06-15",
    "2016-03-30",
    "2016-06-01",
    "2016-09-01",
    "2016-12-01",
    "2017-03-01",
    "2017-06-01",
    "2017-08-01",
    "2017-09-01",
    "2017-10-01",
    "2017-11-01",
    "2018-01-01",
    "2018-02-01",
    "2018-04-01",
    "2018-06-01",
    "2018-07-01",
    "2018-08-01",
    "2018-10-01",
    "2018-11-01",
    "2018-12-01",
    "2019-02-01",
    "2019-04-01",
    "2019-06-01",
    "2019-07-01",
    "2019-08-01",
    "2019-09-01",
    "2019-11-01",
    "2019-12-01",
    "2020-03-01",
    "2020-04-01",
    "2020-05-01",
    "2020-06-01",
    "2020-07-01",
    "2020-08-01",
    "2020-11-01",
    "2021-02-01",
    "2021-03-01",
    "2021-05-01",
    "2021-08-01",
    "2022-01-01",
    "2022-05-01",
    "2022-07-01",
    "2022-09-01",
    "2022-11-01",
    "2023-02-01",
    "2023-04-01",
    "2023-05-01",
    "2023-06-01",
    "2023-09-01",
    "2023-11-01",
    "2024-01-01",
    "2024-03-01",
    "2024-05-01",
    "2024-07-01",
    "2024-10-01",
    "2025-01-01",
    "2025-03-01",
    "2025-05-01",
    "2025-07-01",
    "2025-09-01",
    "2015-05-01-preview",
];

pub(super) const ROLE_ASSIGNMENTS: &[&str] = &[
    "2015-07-01",
    "2022-04-01",
    "2017-10-01-preview",
    "2018-01-01-preview",
    "2018-09-01-preview",
    "2020-03-01-preview",
    "2020-04-01-preview",
    "2020-08-01-preview",
    "2020-10-01-preview",
];

pub(super) const STORAGE: &[&str] = &[
    "2015-06-15",
    "2016-01-01",
    "2016-05-01",
    "2016-12-01",
    "2017-06-01",
    "2017-10-01",
    "2018-02-01",
    "2018-07-01",
    "2018-11-01",
    "2019-04-01",
    "2019-06-01",
    "2021-01-01",
    "2021-02-01",
    "2021-04-01",
    "2021-06-01",
    "2021-08-01",
    "2021-09-01",
    "2022-05-01",
    "2022-09-01",
    "2023-01-01",
    "2023-04-01",
    "2023-05-01",
    "2024-01-01",
    "2025-01-01",
    "2025-06-01",
    "2025-08-01",
    "2026-04-01",
    "2026-06-01",
    "2026-09-01",
    "2015-05-01-preview",
    "2018-03-01-preview",
    "2020-08-01-preview",
];

pub(super) const DATA_LAKE_STORE: &[&str] = &["2016-11-01", "2015-10-01-preview"];

pub(super) const KEYVAULT: &[&str] = &[
    "2015-06-01",
    "2016-10-01",
    "2018-02-14",
    "2019-09-01",
    "2021-10-01",
    "2022-07-01",
    "2022-11-01",
    "2023-02-01",
    "2023-07-01",
    "2024-11-01",
    "2025-05-01",
    "2026-02-01",
    "2026-05-15",
    "2018-02-14-preview",
    "2020-04-01-preview",
    "2021-04-01-preview",
    "2021-06-01-preview",
    "2021-11-01-preview",
    "2022-02-01-preview",
    "2024-04-01-preview",
    "2024-12-01-preview",
    "2026-03-01-preview",
];

pub(super) const SQL_SERVERS: &[&str] = &[
    "2014-04-01",
    "2021-11-01",
    "2023-08-01",
    "2025-01-01",
    "2015-05-01-preview",
    "2019-06-01-preview",
    "2020-02-02-preview",
    "2020-08-01-preview",
    "2020-11-01-preview",
    "2021-02-01-preview",
    "2021-05-01-preview",
    "2021-08-01-preview",
    "2021-11-01-preview",
    "2022-02-01-preview",
    "2022-05-01-preview",
    "2022-08-01-preview",
    "2022-11-01-preview",
    "2023-02-01-preview",
    "2023-05-01-preview",
    "2023-08-01-preview",
    "2024-05-01-preview",
    "2024-11-01-preview",
    "2025-02-01-preview",
    "2025-08-01-preview",
];

/// `servers/databases`: the servers set without 2015-05-01-preview, plus two previews.
pub(super) const SQL_DATABASES_EXTRA: &[&str] = &["2017-03-01-preview", "2017-10-01-preview"];

/// `servers/administrators`: the servers set without 2015-05-01-preview, plus one preview.
pub(super) const SQL_ADMINISTRATORS_EXTRA: &[&str] = &["2018-06-01-preview"];

/// The SQL sets of arm-contract §0.2, built once from the servers set.
pub(super) fn sql(type_lower: &str) -> Option<&'static [&'static str]> {
    use std::sync::OnceLock;
    static DATABASES: OnceLock<Vec<&'static str>> = OnceLock::new();
    static ADMINISTRATORS: OnceLock<Vec<&'static str>> = OnceLock::new();
    static ENTRA_ONLY: OnceLock<Vec<&'static str>> = OnceLock::new();
    let without_first_preview = |extra: &[&'static str]| -> Vec<&'static str> {
        SQL_SERVERS.iter().copied().filter(|v| *v != "2015-05-01-preview").chain(extra.iter().copied()).collect()
    };
    Some(match type_lower {
        "microsoft.sql/servers" | "microsoft.sql/checknameavailability" => SQL_SERVERS,
        "microsoft.sql/servers/databases" => DATABASES.get_or_init(|| without_first_preview(SQL_DATABASES_EXTRA)),
        "microsoft.sql/servers/administrators" => {
            ADMINISTRATORS.get_or_init(|| without_first_preview(SQL_ADMINISTRATORS_EXTRA))
        }
        // From 2020-02-02-preview on.
        "microsoft.sql/servers/azureadonlyauthentications" => {
            ENTRA_ONLY.get_or_init(|| SQL_SERVERS.iter().copied().filter(|v| *v >= "2020-02-02").collect())
        }
        _ => return None,
    })
}

pub(super) const ROLE_DEFINITIONS: &[&str] = &["2015-07-01", "2022-04-01", "2018-01-01-preview", "2022-05-01-preview"];

/// The versions newest first, comma-separated, for the error message.
pub fn listing(versions: &[&str]) -> String {
    let mut v: Vec<&str> = versions.to_vec();
    v.sort_unstable_by(|a, b| b.cmp(a));
    v.join(", ")
}
