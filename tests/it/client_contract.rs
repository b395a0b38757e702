//! The client side of the contract: every request body idlab builds has the shape of the
//! request in the matching `tests/fixtures/arm-specs/` example (each key it sends exists there with
//! the same JSON type), and every example response yields the attributes idlab reads.

use std::collections::HashMap;

use idlab::kinds::env::Env;
use idlab::resolve::{Options, load_str};
use serde_json::Value;

use crate::common::root;

fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(root().join("tests/fixtures/arm-specs").join(name)).expect("fixture");
    serde_json::from_str(&text).expect("JSON")
}

fn example_request(name: &str) -> Value {
    let fx = fixture(name);
    fx["parameters"].as_object().and_then(|p| p.values().find(|v| v.is_object()).cloned()).unwrap_or(Value::Null)
}

/// Keys of `ours` missing from `example`, or typed differently.
fn not_in_example(ours: &Value, example: &Value, path: &str, out: &mut Vec<String>) {
    match (ours, example) {
        (Value::Object(o), Value::Object(e)) => {
            for (k, v) in o {
                // Keys that are resource ids (identity maps) cannot match an example's ids,
                // and tag names are free-form.
                if k.starts_with("/subscriptions/") || path.ends_with("/tags") {
                    continue;
                }
                match e.get(k) {
                    Some(ev) => not_in_example(v, ev, &format!("{path}/{k}"), out),
                    None => out.push(format!("{path}/{k}")),
                }
            }
        }
        (Value::Array(o), Value::Array(e)) => {
            if let (Some(f), Some(ef)) = (o.first(), e.first()) {
                not_in_example(f, ef, &format!("{path}[]"), out);
            }
        }
        (o, e) if std::mem::discriminant(o) != std::mem::discriminant(e) && !e.is_null() => {
            out.push(format!("{path} (type)"))
        }
        _ => {}
    }
}

const PLAN: &str = r#"
name: contract
location: eastus
resources:
  rg:
    type: resource_group
    name: rg1
    tags: { env: test }
  id1:
    type: user_assigned_identity
    name: ID1
    resource_group: ${rg}
  vnet:
    type: virtual_network
    name: vnet1
    resource_group: ${rg}
    address_space: [10.0.0.0/16]
    subnets:
      - { name: default, address_prefix: 10.0.0.0/24 }
  pip:
    type: public_ip
    name: pip1
    resource_group: ${rg}
  nic:
    type: network_interface
    name: nic1
    resource_group: ${rg}
    virtual_network: ${vnet}
    subnet: default
    public_ip: ${pip}
  vm:
    type: virtual_machine
    name: vm1
    resource_group: ${rg}
    image: Win2019Datacenter
    admin: { username: azureuser, password: { generate: 24 } }
    network: { nic: "${nic}" }
    identity: { system_assigned: true, user_assigned: ["${id1}"] }
  reader:
    type: role_assignment
    scope: ${rg}
    principal: ${id1}
    role: Reader
"#;

/// Extra keys idlab sends that an example does not show, with why.
const EXTRA_OK: &[(&str, &str, &str)] = &[
    (
        "resources_ResourceGroups_CreateOrUpdate.json",
        "/tags",
        "the ownership tag (ARM accepts tags on every tracked resource)",
    ),
    ("network_VirtualNetworks_CreateOrUpdate.json", "/tags", "the ownership tag"),
    ("network_PublicIPAddresses_CreateOrUpdate.json", "/tags", "the ownership tag"),
    (
        "network_PublicIPAddresses_CreateOrUpdate.json",
        "/sku",
        "Standard SKU: Basic public IPs are retired (arm-contract §3)",
    ),
    ("network_PublicIPAddresses_CreateOrUpdate.json", "/properties", "static allocation, which Standard requires"),
    ("network_NetworkInterfaces_CreateOrUpdate.json", "/tags", "the ownership tag"),
    ("compute_VirtualMachines_CreateOrUpdate_UserAssignedIdentity.json", "/tags", "the ownership tag"),
    (
        "compute_VirtualMachines_CreateOrUpdate_UserAssignedIdentity.json",
        "/properties/storageProfile/osDisk/deleteOption",
        "the OS disk goes with the VM (ComputeRP 2025-04-01 OSDisk.deleteOption; Azure's default, Detach, leaves it)",
    ),
    (
        "compute_VirtualMachines_CreateOrUpdate_UserAssignedIdentity.json",
        "/properties/networkProfile/networkInterfaces/0/properties/deleteOption",
        "the interface network: auto makes goes with the VM (NetworkInterfaceReferenceProperties.deleteOption)",
    ),
    (
        "authorization_RoleAssignments_Create.json",
        "/properties/description",
        "names the owning plan (a documented optional property, arm-contract §4)",
    ),
];

#[test]
fn request_bodies_have_the_examples_shape() {
    let loaded = load_str("contract.yaml", PLAN.to_string(), &root(), &Options::default());
    assert!(!loaded.has_errors(), "{:?}", loaded.diags);
    let plan = loaded.plan.expect("plan");
    let mut values: HashMap<(String, String), String> = HashMap::new();
    let order = plan.dag.topo_order().expect("order");
    let mut bodies: HashMap<String, Value> = HashMap::new();
    for i in order {
        let d = &plan.decls[i];
        let env = Env {
            subscription: "sub",
            plan: "contract",
            location: "eastus",
            logical: &d.logical.value,
            values: &values,
            caller_object_id: Some("caller"),
            tenant_id: Some("t"),
            base_dir: &plan.base_dir,
        };
        let want = d.spec.desired(&env).expect("ARM kind");
        values.insert((d.logical.value.clone(), "id".into()), want.id.clone());
        values.insert((d.logical.value.clone(), "principal_id".into()), "00000000-0000-0000-0000-000000000001".into());
        bodies.insert(d.kind.type_name().to_string(), want.body);
    }
    let pairs = [
        ("resource_group", "resources_ResourceGroups_CreateOrUpdate.json"),
        ("user_assigned_identity", "msi_userAssignedIdentities_CreateOrUpdate.json"),
        ("virtual_network", "network_VirtualNetworks_CreateOrUpdate.json"),
        ("public_ip", "network_PublicIPAddresses_CreateOrUpdate.json"),
        ("network_interface", "network_NetworkInterfaces_CreateOrUpdate.json"),
        ("virtual_machine", "compute_VirtualMachines_CreateOrUpdate_UserAssignedIdentity.json"),
        ("role_assignment", "authorization_RoleAssignments_Create.json"),
    ];
    let mut problems = Vec::new();
    for (kind, file) in pairs {
        let mut out = Vec::new();
        not_in_example(&bodies[kind], &example_request(file), "", &mut out);
        out.retain(|k| {
            !EXTRA_OK.iter().any(|(f, p, _)| *f == file && !p.is_empty() && (k == p || k.starts_with(&format!("{p}/"))))
        });
        for k in out {
            problems.push(format!("{kind} ({file}): sends {k}, which the example request does not have"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn example_responses_give_the_attributes_idlab_reads() {
    let cases = [
        (
            "msi_userAssignedIdentities_Get.json",
            "200",
            &["principal_id", "client_id", "tenant_id", "name", "location"][..],
        ),
        ("compute_VirtualMachines_CreateOrUpdate_UserAssignedIdentity.json", "200", &["name"][..]),
        ("network_PublicIPAddresses_CreateOrUpdate.json", "200", &["name", "location"][..]),
        ("resources_ResourceGroups_CreateOrUpdate.json", "200", &["name", "location"][..]),
    ];
    for (file, status, attrs) in cases {
        let body = fixture(file)["responses"][status]["body"].clone();
        let mut values = HashMap::new();
        idlab::engine::record(&mut values, "x", "/id", Some(&body));
        for a in attrs {
            assert!(values.contains_key(&("x".to_string(), a.to_string())), "{file}: no `{a}`");
        }
    }
    // Role assignment bodies read back: principal, role and scope.
    let ra = fixture("authorization_RoleAssignments_Get.json")["responses"]["200"]["body"].clone();
    assert!(!idlab::engine::owned_by(&ra, "x", idlab::kinds::env::Owner::Description));
    assert!(ra.pointer("/properties/principalId").and_then(Value::as_str).is_some());
    // An ARM error envelope becomes an error with its code.
    let r = idlab::arm::client::Response {
        status: 409,
        headers: Default::default(),
        body: serde_json::json!({"error": {"code": "RoleAssignmentExists", "message": "The role assignment already exists."}}),
        request_id: Some("rid".into()),
    };
    let e = idlab::arm::Client::error(&reqwest::Method::PUT, "/x?sig=secret", &r);
    assert_eq!(e.code, "RoleAssignmentExists");
    assert_eq!(e.status, Some(409));
    assert!(!e.to_string().contains("sig=secret"), "{e}");
    assert!(e.to_string().contains("request id rid"), "{e}");
}
