//! `idlab import`, the pure half: turns what the engine read of some resource groups
//! (`engine::import`) into a plan's YAML. Each kind writes its own declaration
//! (`kinds::import`, behind [`crate::kinds::Kind::import`]); this module decides what is
//! declared (implicit resources are not: a VM's OS disk, the network `network: auto` makes),
//! gives every declaration a readable unique key, fills in references, and renders the file:
//! the same input gives the same bytes.
//!
//! Imports: kinds, model. No I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::Value as J;

use crate::kinds::import::{Field, Imported, Placeholder, Source, Y, key_of, last};
use crate::kinds::{self, Kind};

/// What the engine read.
#[derive(Default)]
pub struct Input {
    /// The plan's `name`.
    pub plan_name: String,
    pub subscription: String,
    /// The groups asked for, as named.
    pub groups: Vec<String>,
    /// The deploying principal's object id.
    pub caller: Option<String>,
    /// Every resource found: the groups, what their listings hold (with the full body for
    /// kinds idlab has), and the objects read inside them.
    pub found: Vec<Found>,
    /// Role assignments at the groups and at resources in them.
    pub assignments: Vec<J>,
    /// What could not be read, for the file's notes.
    pub notes: Vec<String>,
    /// The import writes files next to the plan (`--out`): blobs are declared, their content
    /// in `contents`.
    pub files: bool,
    /// Content read for resources whose declaration names a file (blobs), by lower-case id.
    pub contents: BTreeMap<String, Vec<u8>>,
}

/// One resource found.
pub struct Found {
    pub id: String,
    /// Its ARM type as listed.
    pub arm_type: String,
    /// Its body, for kinds idlab has (else the listing's entry).
    pub body: J,
    /// The kind that imports it, when idlab has one.
    pub kind: Option<&'static dyn Kind>,
}

/// The written plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub text: String,
    /// Every `{ env: NAME }` placeholder.
    pub placeholders: Vec<Placeholder>,
    /// (key, what) the plan cannot write as Azure holds it.
    pub unexpressed: Vec<(String, String)>,
    /// How many declarations, implicit resources and resources of kinds idlab lacks.
    pub declared: usize,
    pub implicit: usize,
    pub unsupported: usize,
    /// The files the plan names, to write next to it: (path relative to the plan, content).
    pub files: Vec<(String, Vec<u8>)>,
}

struct Item<'a> {
    id: String,
    body: &'a J,
    kind: &'static dyn Kind,
}

/// The plan for `input`.
pub fn write(input: &Input) -> Output {
    // Every body read, for kinds that look at others (a VM at its interface).
    let mut bodies: BTreeMap<String, J> = BTreeMap::new();
    let mut children: Vec<(String, J, &'static dyn Kind)> = Vec::new();
    for f in &input.found {
        bodies.insert(f.id.to_ascii_lowercase(), f.body.clone());
        if let Some(k) = f.kind {
            let found = k.import_children(&f.id, &f.body).found;
            children.extend(found.into_iter().filter_map(|(id, body, t)| Some((id, body, kinds::by_type(t)?))));
        }
    }
    let location = plan_location(input);
    let mut items: Vec<Item<'_>> =
        input.found.iter().filter_map(|f| Some(Item { id: f.id.clone(), body: &f.body, kind: f.kind? })).collect();
    items.extend(children.iter().map(|(id, body, kind)| Item { id: id.clone(), body, kind: *kind }));
    let mut seen = BTreeSet::new();
    items.retain(|i| seen.insert(i.id.to_ascii_lowercase()));
    let assignment_kind = kinds::by_arm_type("Microsoft.Authorization/roleAssignments");
    let mut assignments: Vec<&J> = input.assignments.iter().collect();
    assignments.sort_by_key(|a| a.get("id").and_then(J::as_str).unwrap_or_default().to_ascii_lowercase());
    if let Some(k) = assignment_kind {
        for a in assignments {
            if let Some(id) = a.get("id").and_then(J::as_str) {
                items.push(Item { id: id.to_string(), body: a, kind: k });
            }
        }
    }

    // First pass: what each declares and stands for, without keys.
    let empty = BTreeMap::new();
    let first_src = Source {
        bodies: &bodies,
        keys: &empty,
        principals: &empty,
        caller: input.caller.as_deref(),
        location: &location,
        files: input.files,
    };
    let mut first: Vec<(usize, Imported)> =
        items.iter().enumerate().filter_map(|(n, i)| Some((n, i.kind.import(&i.id, i.body, &first_src)?))).collect();
    let mut covered: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (n, imp) in &first {
        for (id, what) in &imp.covers {
            covered.entry(id.clone()).or_insert_with(|| (items[*n].id.clone(), what.clone()));
        }
    }
    first.retain(|(n, _)| !covered.contains_key(&items[*n].id.to_ascii_lowercase()));
    first.sort_by(|(a, x), (b, y)| {
        (x.rank, items[*a].id.to_ascii_lowercase()).cmp(&(y.rank, items[*b].id.to_ascii_lowercase()))
    });

    // Keys, then the principals' references.
    let mut keys: BTreeMap<String, String> = BTreeMap::new();
    let mut taken: BTreeSet<String> = BTreeSet::new();
    for (n, imp) in first.iter().filter(|(_, i)| !i.late_key && i.skipped.is_none()) {
        keys.insert(items[*n].id.to_ascii_lowercase(), unique(&mut taken, &imp.key_hint, &imp.key_alt));
    }
    let mut principals: BTreeMap<String, String> = BTreeMap::new();
    for (n, imp) in &first {
        if let Some(k) = keys.get(&items[*n].id.to_ascii_lowercase()) {
            for (oid, attr) in &imp.principals {
                principals.insert(oid.clone(), format!("${{{k}{attr}}}"));
            }
        }
    }

    // Second pass: the declarations, with references.
    let src = Source {
        bodies: &bodies,
        keys: &keys,
        principals: &principals,
        caller: input.caller.as_deref(),
        location: &location,
        files: input.files,
    };
    let mut decls: Vec<(String, &'static str, Imported)> = Vec::new();
    let mut declared: BTreeSet<String> = BTreeSet::new();
    let mut skipped = Vec::new();
    let mut files = Vec::new();
    for (n, _) in &first {
        let item = &items[*n];
        let Some(mut imp) = item.kind.import(&item.id, item.body, &src) else { continue };
        let group = kinds::import::group_id(&item.id);
        if !group.is_empty() && !keys.contains_key(&group.to_ascii_lowercase()) && imp.note.is_none() {
            imp.note = Some(format!(
                "in resource group {}, outside the imported ones: read because a declaration uses it (destroy deletes it too)",
                last(&group)
            ));
        }
        if let Some(why) = &imp.skipped {
            skipped.push(why.clone());
            continue;
        }
        // Nothing refers to a late key (a role assignment, an access-policy entry).
        let key = match keys.get(&item.id.to_ascii_lowercase()) {
            Some(k) => k.clone(),
            None => unique(&mut taken, &imp.key_hint, &imp.key_alt),
        };
        if let Some(path) = &imp.file {
            let content = input.contents.get(&item.id.to_ascii_lowercase()).cloned().unwrap_or_default();
            files.push((path.clone(), content));
        }
        declared.insert(item.id.to_ascii_lowercase());
        decls.push((key, item.kind.type_name(), imp));
    }

    // What is not declared.
    let mut implicit: Vec<String> = Vec::new();
    let mut unsupported: Vec<String> = Vec::new();
    let mut found: Vec<&Found> = input.found.iter().collect();
    found.sort_by_key(|f| f.id.to_ascii_lowercase());
    for f in found {
        let lower = f.id.to_ascii_lowercase();
        if let Some((parent, what)) = covered.get(&lower) {
            let of = keys.get(&parent.to_ascii_lowercase()).cloned().unwrap_or_else(|| last(parent).to_string());
            implicit.push(format!("{}  {}  ({what} of {of})", f.arm_type, last(&f.id)));
        } else if !declared.contains(&lower) {
            unsupported.push(format!("{}  {}", f.arm_type, last(&f.id)));
        }
    }
    let mut out = render(input, &location, decls, implicit, unsupported, skipped);
    out.files = files;
    out
}

/// The plan's location: the first group's (the groups sorted by name).
fn plan_location(input: &Input) -> String {
    let mut groups: Vec<&Found> =
        input.found.iter().filter(|f| f.arm_type.eq_ignore_ascii_case("Microsoft.Resources/resourceGroups")).collect();
    groups.sort_by_key(|g| g.id.to_ascii_lowercase());
    groups.first().and_then(|g| g.body.get("location")).and_then(J::as_str).unwrap_or("eastus").to_string()
}

/// A key not taken yet: the hint's, else with `-alt`, else numbered.
fn unique(taken: &mut BTreeSet<String>, hint: &str, alt: &str) -> String {
    let base = key_of(hint);
    let mut k = base.clone();
    if taken.contains(&k) && !alt.is_empty() {
        k = key_of(&format!("{base}-{alt}"));
    }
    let mut n = 2;
    while taken.contains(&k) {
        k = key_of(&format!("{base}-{n}"));
        n += 1;
    }
    taken.insert(k.clone());
    k
}

fn render(
    input: &Input,
    location: &str,
    decls: Vec<(String, &'static str, Imported)>,
    implicit: Vec<String>,
    unsupported: Vec<String>,
    skipped: Vec<String>,
) -> Output {
    let mut groups = input.groups.clone();
    groups.sort_by_key(|g| g.to_ascii_lowercase());
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# Written by `idlab import` from resource group{} {} (subscription {}).",
        if groups.len() == 1 { "" } else { "s" },
        groups.join(", "),
        input.subscription
    );
    let placeholders: Vec<Placeholder> = decls.iter().flat_map(|(_, _, i)| i.placeholders.clone()).collect();
    if !placeholders.is_empty() {
        t.push_str("# Secret values are never read: set these environment variables before `idlab plan` or `apply`:\n");
        for p in &placeholders {
            let _ = writeln!(t, "#   {}: {}", p.name, p.what);
        }
    }
    t.push_str("# `idlab plan FILE --adopt` shows what taking these resources over would do.\n");
    let _ = writeln!(t, "name: {}", scalar(&input.plan_name, false));
    let _ = writeln!(t, "location: {}", scalar(location, false));
    t.push_str("\nresources:");
    if decls.is_empty() {
        t.push_str(" {}\n");
    } else {
        t.push('\n');
    }
    let mut unexpressed = Vec::new();
    for (n, (key, type_name, imp)) in decls.iter().enumerate() {
        if n > 0 {
            t.push('\n');
        }
        if let Some(n) = &imp.note {
            let _ = writeln!(t, "  # {}", one_line(n));
        }
        if !imp.unexpressed.is_empty() {
            t.push_str("  # Azure holds what a plan cannot write, so `plan` shows it as a change:\n");
            for u in &imp.unexpressed {
                let _ = writeln!(t, "  #   {}", one_line(u));
                unexpressed.push((key.clone(), u.clone()));
            }
        }
        let _ = writeln!(t, "  {}:", scalar(key, false));
        let mut fields = vec![Field::str("type", *type_name)];
        fields.extend(imp.fields.iter().cloned());
        map(&mut t, &fields, 4);
    }
    let blocks = [
        ("Not declared: part of a declaration (a VM's disks, the network its `network:` makes):", &implicit),
        ("Not declared, and why (access that names principals outside this plan, blobs):", &skipped),
        ("Not declared: kinds idlab does not manage or import (type, name):", &unsupported),
    ];
    for (title, lines) in blocks {
        if lines.is_empty() {
            continue;
        }
        let _ = write!(t, "\n# {title}\n");
        for l in lines {
            let _ = writeln!(t, "#   {}", one_line(l));
        }
    }
    if !input.notes.is_empty() {
        t.push_str("\n# Not read:\n");
        for l in &input.notes {
            let _ = writeln!(t, "#   {}", one_line(l));
        }
    }
    Output {
        text: t,
        placeholders,
        unexpressed,
        declared: decls.len(),
        implicit: implicit.len(),
        unsupported: unsupported.len(),
        files: Vec::new(),
    }
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

fn map(t: &mut String, fields: &[Field], indent: usize) {
    for f in fields {
        field(t, f, indent, &" ".repeat(indent));
    }
}

/// One field; `lead` is what starts its line (its indentation, or `- ` for a list item's
/// first field).
fn field(t: &mut String, f: &Field, indent: usize, lead: &str) {
    let pad = " ".repeat(indent);
    if let Some(c) = &f.comment {
        // A comment above a list item's first field goes above the `- `.
        let _ = writeln!(t, "{}# {}", " ".repeat(lead.len().min(indent)), one_line(c));
    }
    let key = scalar(&f.key, false);
    match &f.value {
        Y::Map(m) if !m.is_empty() => {
            let _ = writeln!(t, "{lead}{key}:");
            map(t, m, indent + 2);
        }
        Y::List(l) if !l.is_empty() => {
            let _ = writeln!(t, "{lead}{key}:");
            for item in l {
                match item {
                    Y::Map(m) if !m.is_empty() => {
                        let first = format!("{pad}  - ");
                        field(t, &m[0], indent + 4, &first);
                        for x in &m[1..] {
                            field(t, x, indent + 4, &" ".repeat(indent + 4));
                        }
                    }
                    other => {
                        let _ = writeln!(t, "{pad}  - {}", inline(other));
                    }
                }
            }
        }
        other => {
            let _ = writeln!(t, "{lead}{key}: {}", inline(other));
        }
    }
}

/// A value on one line.
fn inline(v: &Y) -> String {
    match v {
        Y::Str(s) => scalar(s, false),
        Y::Int(n) => n.to_string(),
        Y::Bool(b) => b.to_string(),
        Y::Flow(l) | Y::List(l) => format!("[{}]", l.iter().map(flow).collect::<Vec<_>>().join(", ")),
        Y::FlowMap(m) => {
            format!(
                "{{ {} }}",
                m.iter().map(|(k, v)| format!("{}: {}", scalar(k, true), flow(v))).collect::<Vec<_>>().join(", ")
            )
        }
        Y::Map(m) => {
            format!(
                "{{ {} }}",
                m.iter()
                    .map(|f| format!("{}: {}", scalar(&f.key, true), flow(&f.value)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    }
}

fn flow(v: &Y) -> String {
    match v {
        Y::Str(s) => scalar(s, true),
        other => inline(other),
    }
}

/// A string as a YAML scalar: plain when it reads back as the same string, else
/// double-quoted (JSON's escapes are YAML's).
pub fn scalar(s: &str, in_flow: bool) -> String {
    let lower = s.to_ascii_lowercase();
    let reserved = matches!(
        lower.as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "~" | ".inf" | "-.inf" | ".nan"
    );
    let numeric = s.parse::<f64>().is_ok()
        || lower.starts_with("0x")
        || lower.starts_with("0o")
        || s.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | '_' | ':'));
    let bad_start = s.starts_with(|c: char| "-?:,[]{}#&*!|>'\"%@`".contains(c) || c.is_whitespace());
    let bad_inside = s.contains(": ")
        || s.contains(" #")
        || s.ends_with(':')
        || s.ends_with(char::is_whitespace)
        || s.chars().any(|c| c.is_control() || !(c.is_ascii() || c.is_alphanumeric()))
        || (in_flow && s.contains(|c: char| ",[]{}".contains(c)));
    if s.is_empty() || reserved || numeric || bad_start || bad_inside {
        serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_read_back_as_strings() {
        assert_eq!(scalar("myVM", false), "myVM");
        assert_eq!(scalar("${rg}", false), "${rg}");
        assert_eq!(scalar("${rg}", true), "\"${rg}\"");
        assert_eq!(scalar("3389", false), "\"3389\"");
        assert_eq!(scalar("yes", false), "\"yes\"");
        assert_eq!(scalar("a: b", false), "\"a: b\"");
        assert_eq!(scalar("*", false), "\"*\"");
        assert_eq!(scalar("", false), "\"\"");
        assert_eq!(scalar("192.168.0.0/16", false), "192.168.0.0/16");
        assert_eq!(scalar("x\ny", false), "\"x\\ny\"");
    }

    const SUB: &str = "/subscriptions/00000000-0000-0000-0000-000000000001";

    fn rg(name: &str) -> Found {
        let id = format!("{SUB}/resourceGroups/{name}");
        Found {
            id: id.clone(),
            arm_type: "Microsoft.Resources/resourceGroups".into(),
            body: json!({ "id": id, "name": name, "location": "eastus" }),
            kind: kinds::by_arm_type("Microsoft.Resources/resourceGroups"),
        }
    }

    fn res(group: &str, t: &str, name: &str, mut body: J) -> Found {
        let id = format!("{SUB}/resourceGroups/{group}/providers/{t}/{name}");
        body["id"] = json!(id);
        body["name"] = json!(name);
        body["type"] = json!(t);
        if body.get("location").is_none() {
            body["location"] = json!("eastus");
        }
        Found { id, arm_type: t.into(), kind: kinds::by_arm_type(t), body }
    }

    /// A portal-made VM with a user-assigned identity, its network named the portal's way,
    /// a Reader assignment, and an unsupported resource.
    fn portal() -> Input {
        let g = format!("{SUB}/resourceGroups/myRG/providers");
        let id1 = format!("{g}/Microsoft.ManagedIdentity/userAssignedIdentities/ID1");
        let nic = format!("{g}/Microsoft.Network/networkInterfaces/myvm123");
        Input {
            plan_name: "myRG".into(),
            subscription: "00000000-0000-0000-0000-000000000001".into(),
            groups: vec!["myRG".into()],
            caller: Some("cccccccc-0000-0000-0000-000000000000".into()),
            found: vec![
                rg("myRG"),
                res(
                    "myRG",
                    "Microsoft.ManagedIdentity/userAssignedIdentities",
                    "ID1",
                    json!({ "properties": { "principalId": "11111111-0000-0000-0000-000000000000" } }),
                ),
                res(
                    "myRG",
                    "Microsoft.Network/virtualNetworks",
                    "myRG-vnet",
                    json!({ "properties": {
                    "addressSpace": { "addressPrefixes": ["10.0.0.0/16"] },
                    "subnets": [{ "name": "default", "properties": { "addressPrefix": "10.0.0.0/24" } }] } }),
                ),
                res(
                    "myRG",
                    "Microsoft.Network/networkSecurityGroups",
                    "myVM-nsg",
                    json!({ "properties": { "securityRules": [
                    { "name": "RDP", "properties": { "priority": 300, "protocol": "TCP", "access": "Allow", "direction": "Inbound",
                      "sourceAddressPrefix": "*", "sourcePortRange": "*", "destinationAddressPrefix": "*", "destinationPortRange": "3389" } }] } }),
                ),
                res(
                    "myRG",
                    "Microsoft.Network/publicIPAddresses",
                    "myVM-ip",
                    json!({ "sku": { "name": "Standard" }, "properties": { "publicIPAllocationMethod": "Static" } }),
                ),
                res(
                    "myRG",
                    "Microsoft.Network/networkInterfaces",
                    "myvm123",
                    json!({ "properties": {
                    "ipConfigurations": [{ "name": "ipconfig1", "properties": {
                        "subnet": { "id": format!("{g}/Microsoft.Network/virtualNetworks/myRG-vnet/subnets/default") },
                        "publicIPAddress": { "id": format!("{g}/Microsoft.Network/publicIPAddresses/myVM-ip") } } }],
                    "networkSecurityGroup": { "id": format!("{g}/Microsoft.Network/networkSecurityGroups/myVM-nsg") } } }),
                ),
                res(
                    "myRG",
                    "Microsoft.Compute/virtualMachines",
                    "myVM",
                    json!({
                    "identity": { "type": "UserAssigned", "userAssignedIdentities": { id1.clone(): {} } },
                    "properties": {
                        "hardwareProfile": { "vmSize": "Standard_B2s" },
                        "storageProfile": {
                            "imageReference": { "publisher": "MicrosoftWindowsServer", "offer": "WindowsServer", "sku": "2019-Datacenter", "version": "latest" },
                            "osDisk": { "osType": "Windows", "createOption": "FromImage", "deleteOption": "Delete",
                                "managedDisk": { "id": format!("{g}/Microsoft.Compute/disks/myVM_OsDisk_1_abc"), "storageAccountType": "Standard_LRS" } } },
                        "osProfile": { "computerName": "myVM", "adminUsername": "azureuser", "windowsConfiguration": {} },
                        "networkProfile": { "networkInterfaces": [{ "id": nic, "properties": { "deleteOption": "Delete" } }] } } }),
                ),
                res("myRG", "Microsoft.Compute/disks", "myVM_OsDisk_1_abc", json!({})),
                Found {
                    id: format!("{g}/Microsoft.Web/sites/myapp"),
                    arm_type: "Microsoft.Web/sites".into(),
                    body: json!({}),
                    kind: None,
                },
            ],
            assignments: vec![json!({
                "id": format!("{SUB}/resourceGroups/myRG/providers/Microsoft.Authorization/roleAssignments/5e9c5b4e-0000-4000-8000-000000000000"),
                "type": "Microsoft.Authorization/roleAssignments",
                "properties": { "scope": format!("{SUB}/resourceGroups/myRG"), "principalId": "11111111-0000-0000-0000-000000000000",
                    "principalType": "ServicePrincipal",
                    "roleDefinitionId": format!("{SUB}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7") } })],
            notes: Vec::new(),
            ..Input::default()
        }
    }

    #[test]
    fn a_portal_vm_is_declared_with_references_and_its_network_one_by_one() {
        let out = write(&portal());
        let t = &out.text;
        for want in [
            "  rg:\n    type: resource_group\n    name: myRG\n",
            "  id1:\n    type: user_assigned_identity\n    name: ID1\n    resource_group: ${rg}\n",
            "  myvm123:\n    type: network_interface\n    name: myvm123\n    resource_group: ${rg}\n    virtual_network: ${myrg-vnet}\n    subnet: default\n    public_ip: ${myvm-ip}\n    nsg: ${myvm-nsg}\n",
            "    image: Win2019Datacenter\n",
            "    network:\n      nic: ${myvm123}\n",
            "    identity:\n      user_assigned:\n        - ${id1}\n",
            "  id1-reader:\n    type: role_assignment\n    scope: ${rg}\n    principal: ${id1}\n    role: Reader\n",
            "      - name: RDP\n        priority: 300\n        destination_ports: \"3389\"\n",
            "      password: { env: MYVM_ADMIN_PASSWORD }\n",
            "#   Microsoft.Compute/disks  myVM_OsDisk_1_abc  (OS disk of myvm)\n",
            "#   Microsoft.Web/sites  myapp\n",
        ] {
            assert!(t.contains(want), "missing\n{want}\nin\n{t}");
        }
        assert_eq!(out.placeholders.len(), 1);
        assert_eq!((out.declared, out.implicit, out.unsupported), (8, 1, 1));
        assert!(out.unexpressed.is_empty(), "{:?}", out.unexpressed);
        // The same input, the same bytes.
        assert_eq!(write(&portal()).text, out.text);
    }

    #[test]
    fn a_network_with_auto_s_shape_is_network_auto() {
        let mut input = portal();
        let g = format!("{SUB}/resourceGroups/myRG/providers");
        // What `network: auto` makes for a VM named myVM, with the tutorial's names.
        input.found.retain(|f| !f.id.contains("Microsoft.Network"));
        input.found.extend([
            res("myRG", "Microsoft.Network/virtualNetworks", "myVnet", json!({ "properties": {
                "addressSpace": { "addressPrefixes": ["192.168.0.0/16"] },
                "subnets": [{ "name": "mySubnet", "properties": { "addressPrefix": "192.168.1.0/24" } }] } })),
            res("myRG", "Microsoft.Network/networkSecurityGroups", "myNSG", json!({ "properties": { "securityRules": [
                { "name": "myVM3389", "properties": { "priority": 1000, "protocol": "Tcp", "access": "Allow", "direction": "Inbound",
                  "sourceAddressPrefix": "*", "sourcePortRange": "*", "destinationAddressPrefix": "*", "destinationPortRange": "3389" } }] } })),
            res("myRG", "Microsoft.Network/publicIPAddresses", "myPip", json!({ "sku": { "name": "Standard" }, "properties": { "publicIPAllocationMethod": "Static" } })),
            res("myRG", "Microsoft.Network/networkInterfaces", "myVM", json!({ "properties": {
                "ipConfigurations": [{ "name": "ipconfig1", "properties": {
                    "subnet": { "id": format!("{g}/Microsoft.Network/virtualNetworks/myVnet/subnets/mySubnet") },
                    "publicIPAddress": { "id": format!("{g}/Microsoft.Network/publicIPAddresses/myPip") } } }],
                "networkSecurityGroup": { "id": format!("{g}/Microsoft.Network/networkSecurityGroups/myNSG") } } })),
        ]);
        for f in &mut input.found {
            if f.arm_type == "Microsoft.Compute/virtualMachines" {
                f.body["properties"]["networkProfile"]["networkInterfaces"][0]["id"] =
                    json!(format!("{g}/Microsoft.Network/networkInterfaces/myVM"));
            }
        }
        let out = write(&input);
        assert!(
            out.text.contains(
                "    network:\n      vnet: myVnet\n      subnet: mySubnet\n      nsg: myNSG\n      public_ip: myPip\n"
            ),
            "{}",
            out.text
        );
        assert!(!out.text.contains("type: network_interface"), "{}", out.text);
        assert_eq!(out.implicit, 5, "{}", out.text);
        // Detached from the VM's delete, it is not `auto`'s: declared one by one.
        for f in &mut input.found {
            if f.arm_type == "Microsoft.Compute/virtualMachines" {
                f.body["properties"]["networkProfile"]["networkInterfaces"][0]["properties"]["deleteOption"] =
                    json!("Detach");
            }
        }
        let out = write(&input);
        assert!(out.text.contains("type: network_interface"), "{}", out.text);
    }

    #[test]
    fn a_sql_server_declares_its_admin_and_databases_and_master_is_implicit() {
        let mut input = portal();
        let srv = format!("{SUB}/resourceGroups/myRG/providers/Microsoft.Sql/servers/srv");
        input.found.push(res(
            "myRG",
            "Microsoft.Sql/servers",
            "srv",
            json!({ "properties": {
            "administratorLogin": "dba", "administrators": { "azureADOnlyAuthentication": false } } }),
        ));
        for (db, sku) in [
            ("master", json!({"name": "System", "capacity": 0})),
            ("appdb", json!({"name": "GP_S_Gen5", "capacity": 2})),
        ] {
            let t = "Microsoft.Sql/servers/databases";
            let body = json!({ "id": format!("{srv}/databases/{db}"), "name": db, "type": t, "sku": sku });
            input.found.push(Found {
                id: format!("{srv}/databases/{db}"),
                arm_type: t.into(),
                kind: kinds::by_arm_type(t),
                body,
            });
        }
        let t = "Microsoft.Sql/servers/administrators";
        input.found.push(Found {
            id: format!("{srv}/administrators/ActiveDirectory"),
            arm_type: t.into(),
            kind: kinds::by_arm_type(t),
            body: json!({ "properties": { "login": "vm-admin", "sid": "11111111-0000-0000-0000-000000000000" } }),
        });
        let out = write(&input);
        let t = &out.text;
        for want in [
            "  srv:\n    type: sql_server\n    name: srv\n    resource_group: ${rg}\n    entra_only: false\n    admin_login: dba\n    # set SRV_ADMIN_PASSWORD: the SQL administrator password of server srv (Azure never returns it)\n    admin_password: { env: SRV_ADMIN_PASSWORD }\n",
            "  srv-admin:\n    type: sql_entra_admin\n    server: ${srv}\n    login: vm-admin\n    principal: ${id1}\n",
            "  appdb:\n    type: sql_database\n    name: appdb\n    server: ${srv}\n    sku: GP_S_Gen5_2\n",
            "#   Microsoft.Sql/servers/databases  master  (system database of srv)\n",
            "#   SRV_ADMIN_PASSWORD: the SQL administrator password of server srv (Azure never returns it)\n",
        ] {
            assert!(t.contains(want), "missing\n{want}\nin\n{t}");
        }
        assert!(!t.contains("name: master"), "{t}");
    }

    #[test]
    fn vault_entries_of_plan_principals_are_declared_and_secrets_are_placeholders() {
        let mut input = portal();
        let g = format!("{SUB}/resourceGroups/myRG/providers");
        let kv = format!("{g}/Microsoft.KeyVault/vaults/my-kv");
        input.found.push(res("myRG", "Microsoft.KeyVault/vaults", "my-kv", json!({ "properties": {
            "sku": { "family": "A", "name": "standard" }, "softDeleteRetentionInDays": 90, "vaultUri": "https://my-kv.vault.azure.net/",
            "accessPolicies": [
                { "objectId": "11111111-0000-0000-0000-000000000000", "permissions": { "secrets": ["Get", "List"] } },
                { "objectId": "cccccccc-0000-0000-0000-000000000000", "permissions": { "secrets": ["get", "list", "set", "delete", "recover", "purge"] } },
                { "objectId": "99999999-0000-0000-0000-000000000000", "permissions": { "keys": ["unwrapKey"] } },
            ] } })));
        input.found.push(Found {
            id: format!("{kv}/secrets/tutorial-secret"),
            arm_type: "secret".into(),
            body: json!({ "id": "https://my-kv.vault.azure.net/secrets/tutorial-secret", "contentType": "text/plain" }),
            kind: Some(&kinds::key_vault::SecretKind),
        });
        let out = write(&input);
        let t = &out.text;
        for want in [
            "  my-kv:\n    type: key_vault\n    name: my-kv\n    resource_group: ${rg}\n",
            "  id1-policy:\n    type: key_vault_access_policy\n    vault: ${my-kv}\n    principal: ${id1}\n    secrets: [get, list]\n",
            "    # set MY_KV_TUTORIAL_SECRET: the value of secret tutorial-secret in vault my-kv (import never reads secret values)\n    value: { env: MY_KV_TUTORIAL_SECRET }\n    content_type: text/plain\n",
            "#   access policy of vault my-kv for principal 99999999-0000-0000-0000-000000000000: a principal outside the plan\n",
        ] {
            assert!(t.contains(want), "missing\n{want}\nin\n{t}");
        }
        assert!(!t.contains("cccccccc"), "the caller's entry is the vault's :creator\n{t}");
        assert_eq!(out.placeholders.len(), 2);
    }

    /// A VM New-AzVM made, as Azure answered it (tests/fixtures/real-bodies: the group, its
    /// network and the VM of one recording): declared one by one (the interface's IP
    /// configuration is named after the VM, the public IP is Basic, so not `network: auto`'s),
    /// and the plan validates.
    #[test]
    fn recorded_azure_bodies_import_to_a_plan_that_validates() {
        let fixture = |text: &str| -> J { serde_json::from_str::<J>(text).expect("JSON")["body"].clone() };
        let bodies = [
            fixture(include_str!("../tests/fixtures/real-bodies/resource_group.json")),
            fixture(include_str!("../tests/fixtures/real-bodies/virtual_network.json")),
            fixture(include_str!("../tests/fixtures/real-bodies/network_security_group.json")),
            fixture(include_str!("../tests/fixtures/real-bodies/public_ip.json")),
            fixture(include_str!("../tests/fixtures/real-bodies/network_interface.json")),
            fixture(include_str!("../tests/fixtures/real-bodies/virtual_machine.json")),
        ];
        let found = bodies
            .into_iter()
            .map(|b| {
                let id = b["id"].as_str().expect("id").to_string();
                let t =
                    b["type"].as_str().map_or_else(|| "Microsoft.Resources/resourceGroups".to_string(), str::to_string);
                Found { id, kind: kinds::by_arm_type(&t), arm_type: t, body: b }
            })
            .collect();
        let input = Input {
            plan_name: "recorded".into(),
            subscription: "24fb23e3-6ba3-41f0-9b6e-e41131d5d61e".into(),
            groups: vec!["UAITG123456".into()],
            found,
            ..Input::default()
        };
        let out = write(&input);
        for want in [
            "  uaitg123456-nic:\n    type: network_interface\n",
            "    network:\n      nic: ${uaitg123456-nic}\n",
            "    size: Standard_DS1_v2\n    image: Win2016Datacenter\n",
            "    os_disk:\n      type: Premium_LRS\n      delete_with_vm: false\n",
            "    nsg: ${uaitg123456}\n    ip_configuration: UAITG123456\n",
        ] {
            assert!(out.text.contains(want), "missing\n{want}\nin\n{}", out.text);
        }
        let said: Vec<&str> = out.unexpressed.iter().map(|(_, w)| w.as_str()).collect();
        assert!(said.iter().any(|w| w.starts_with("SKU Basic")), "{said:?}");
        assert!(said.iter().any(|w| w.contains("could not be read, so it is not listed")), "{said:?}");
        let loaded = crate::resolve::load_str(
            "recorded.yaml",
            out.text.clone(),
            std::path::Path::new("."),
            &crate::resolve::Options::default(),
        );
        let errors: Vec<String> = loaded.diags.iter().filter(|d| d.is_error()).map(|d| format!("{d:?}")).collect();
        assert!(errors.is_empty(), "{errors:?}\n{}", out.text);
    }

    #[test]
    fn two_groups_get_keys_of_their_own_and_references_across() {
        let mut input = portal();
        let id1 = input.found.iter().find(|f| f.id.ends_with("/ID1")).map(|f| f.id.clone()).expect("ID1");
        input.groups.push("otherRG".into());
        input.found.push(rg("otherRG"));
        input.found.push(res(
            "otherRG",
            "Microsoft.ManagedIdentity/userAssignedIdentities",
            "ID1",
            json!({ "properties": { "principalId": "22222222-0000-0000-0000-000000000000" } }),
        ));
        input.assignments.push(json!({
            "id": format!("{SUB}/resourceGroups/otherRG/providers/Microsoft.Authorization/roleAssignments/00000000-0000-4000-8000-000000000001"),
            "properties": { "scope": format!("{SUB}/resourceGroups/otherRG"), "principalId": "11111111-0000-0000-0000-000000000000",
                "roleDefinitionId": format!("{SUB}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7") } }));
        let out = write(&input);
        let t = &out.text;
        for want in [
            "# Written by `idlab import` from resource groups myRG, otherRG (subscription 00000000-0000-0000-0000-000000000001).\n",
            "  rg:\n    type: resource_group\n    name: myRG\n",
            "  rg-otherrg:\n    type: resource_group\n    name: otherRG\n",
            "  id1-identity:\n    type: user_assigned_identity\n    name: ID1\n    resource_group: ${rg-otherrg}\n",
            "  id1-reader-role:\n    type: role_assignment\n    scope: ${rg-otherrg}\n    principal: ${id1}\n    role: Reader\n",
        ] {
            assert!(t.contains(want), "missing\n{want}\nin\n{t}");
        }
        assert!(id1.contains("/myRG/"));
        // Keys are unique.
        let keys: Vec<&str> =
            t.lines().filter(|l| l.starts_with("  ") && !l.starts_with("   ") && l.ends_with(':')).collect();
        let mut unique = keys.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(keys.len(), unique.len(), "{keys:?}");
    }

    #[test]
    fn creator_secrets_must_hold_what_idlab_needs() {
        let plan = |perms: &str| {
            format!(
                "name: p\nlocation: eastus\nresources:\n  rg:\n    type: resource_group\n    name: g\n  kv:\n    type: key_vault\n    name: kv-one\n    resource_group: ${{rg}}\n    creator_secrets: {perms}\n"
            )
        };
        let errors = |text: String| {
            let l = crate::resolve::load_str(
                "p.yaml",
                text,
                std::path::Path::new("."),
                &crate::resolve::Options::default(),
            );
            l.diags.iter().filter(|d| d.is_error()).map(|d| d.message.clone()).collect::<Vec<_>>()
        };
        assert!(errors(plan("[get, list, set, delete, recover, purge, backup]")).is_empty());
        assert!(errors(plan("[all]")).is_empty());
        assert_eq!(
            errors(plan("[get, list]")),
            [
                "`creator_secrets` leaves out set, delete, recover, purge, which idlab needs to manage the vault's secrets"
            ]
        );
    }
}
