//! Destroy's implicit children: what Azure made on its own with a declared resource (a VM's
//! OS disk, a NIC's IP configurations, an NSG's default rules, a vault's soft-deleted copy),
//! found in the resource's own body by its kind, and what destroy does with each. Pure.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ActionKind, Observed, is_soft_deleted};
use crate::kinds::env::Desired;
use crate::kinds::{Decl, Implicit, ImplicitFate};

/// Something Azure made with a declared resource, not declared itself, as destroy sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImplicitChild {
    /// The declaration it was made with (logical name).
    pub parent: String,
    pub id: String,
    /// `OS disk`, `IP configuration`, ….
    pub what: String,
    /// `delete` (with its parent or after it) or `no_op` (it remains).
    pub action: ActionKind,
    pub reason: String,
}

/// What Azure made on its own with declaration `i`, read from what ARM holds for it: its
/// kind's [`crate::kinds::Spec::implicit`], less what the plan declares itself (the
/// interface `network: auto` makes) and nothing for a soft-deleted copy.
pub fn implicit_of(decls: &[Decl], desired: &[Option<Desired>], bodies: &[Option<Value>], i: usize) -> Vec<Implicit> {
    let Some(Some(have)) = bodies.get(i) else { return Vec::new() };
    if is_soft_deleted(have) {
        return Vec::new();
    }
    let declared: HashSet<String> = desired.iter().flatten().map(|d| d.id.to_ascii_lowercase()).collect();
    decls[i].spec.implicit(have).into_iter().filter(|c| !declared.contains(&c.id.to_ascii_lowercase())).collect()
}

/// Something made with a declaration destroy deletes, found through Azure's references
/// ([`teardown`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Teardown {
    /// The declaration it was made with (index).
    pub parent: usize,
    pub child: Implicit,
    /// The undeclared resource whose body names it (an interface, for its public IP); `None`
    /// when the parent's own body does.
    pub via: Option<String>,
    /// Whether its kind says what uses it, and everything that does goes before it.
    pub unused: bool,
    /// Kept: the id of what still uses it (nothing destroy deletes).
    pub used_by: Option<String>,
    /// What must be gone before destroy deletes it (when it goes after its parent): every
    /// declaration it was found through and what uses it (a virtual network two VMs'
    /// interfaces use waits for both). Filled for the children that go.
    pub waits: Vec<Gone>,
    /// The declarations destroy deletes that must wait for it: the container it lies in (a
    /// resource group), and any its body names (a declared virtual network its interface
    /// sits in).
    pub holds_up: Vec<usize>,
}

/// Something a [`Teardown`] child waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Gone {
    /// A declaration's delete (index).
    Decl(usize),
    /// Another child's delete (its position in [`teardown`]'s answer).
    Child(usize),
}

impl Teardown {
    /// Whether destroy deletes it (with its parent, or after it).
    pub fn goes(&self) -> bool {
        self.used_by.is_none() && !matches!(self.child.fate, ImplicitFate::Remains(_))
    }
}

/// Whether `id` is `scope` or lies inside it.
fn inside(scope: &str, id: &str) -> bool {
    let (s, i) = (scope.to_ascii_lowercase(), id.to_ascii_lowercase());
    i == s || (i.starts_with(&s) && i.as_bytes().get(s.len()) == Some(&b'/'))
}

/// The ARM type of a resource id: `Microsoft.Network/networkInterfaces` (nested types
/// joined), or `None` without a provider.
pub fn arm_type_of(id: &str) -> Option<String> {
    let at = id.to_ascii_lowercase().rfind("/providers/")?;
    let parts: Vec<&str> = id[at + "/providers/".len()..].split('/').collect();
    let ns = parts.first()?;
    let types: Vec<&str> = parts.iter().skip(1).step_by(2).copied().collect();
    (!types.is_empty()).then(|| format!("{ns}/{}", types.join("/")))
}

/// What destroy deletes (or leaves) with the declarations it deletes (`deleting`), in the
/// order it goes: what each one's body names (its kind's [`crate::kinds::Spec::implicit`],
/// and [`crate::kinds::References`]: a VM's disks and interfaces), then what those name, read
/// from `referenced` (an interface's public IPs, security group and virtual network), never
/// what the plan declares. A child goes only when everything that uses it (its kind's
/// `users`, from its body) goes before it: a virtual network another interface still uses
/// stays. A parent's soft-deleted copy stays as it is. Pure.
pub fn teardown(
    decls: &[Decl],
    desired: &[Option<Desired>],
    bodies: &[Option<Value>],
    referenced: &std::collections::HashMap<String, Value>,
    deleting: &[usize],
    adopted: &[usize],
) -> Vec<Teardown> {
    let mut declared: HashSet<String> = desired.iter().flatten().map(|d| d.id.to_ascii_lowercase()).collect();
    declared.extend(bodies.iter().flatten().filter_map(|b| b.get("id")?.as_str()).map(str::to_ascii_lowercase));
    let mut gone: Vec<String> = Vec::new();
    let mut found: Vec<Teardown> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut add = |parent: usize, via: Option<&str>, list: Vec<Implicit>, found: &mut Vec<Teardown>| {
        for c in list {
            let key = c.id.to_ascii_lowercase();
            if !declared.contains(&key) && seen.insert(key) {
                let via = via.map(str::to_string);
                found.push(Teardown {
                    parent,
                    child: c,
                    via,
                    unused: false,
                    used_by: None,
                    waits: vec![Gone::Decl(parent)],
                    holds_up: Vec::new(),
                });
            } else if let Some(t) = found.iter_mut().find(|t| t.child.id.eq_ignore_ascii_case(&c.id)) {
                // Found again through another declaration: it waits for that one too.
                if !t.waits.contains(&Gone::Decl(parent)) {
                    t.waits.push(Gone::Decl(parent));
                }
            }
        }
    };
    for &i in deleting {
        let Some(Some(have)) = bodies.get(i) else { continue };
        // A container (a resource group) does not count as taking what uses a child with it:
        // it may yet be kept for what it holds.
        if !decls[i].spec.contains_resources() {
            gone.extend(desired[i].iter().map(|w| w.id.clone()));
            gone.extend(have.get("id").and_then(Value::as_str).map(str::to_string));
        }
        if is_soft_deleted(have) {
            continue;
        }
        let mut list = decls[i].spec.implicit(have);
        // Made by hand (adopted): what its body refers to was made with it too. What the plan
        // owns refers to nothing beyond its kind's implicit children that is the plan's.
        if adopted.contains(&i) {
            let refs = decls[i].kind.references().filter(|r| r.reads(true));
            list.extend(refs.map(|r| r.made_with(have, true)).unwrap_or_default());
        }
        add(i, None, list, &mut found);
    }
    // What the children name, level by level.
    let mut k = 0;
    while k < found.len() {
        let (parent, id, fate) = (found[k].parent, found[k].child.id.clone(), found[k].child.fate);
        k += 1;
        if matches!(fate, ImplicitFate::Remains(_)) {
            continue;
        }
        let refs = arm_type_of(&id).and_then(|t| crate::kinds::references_of(&t)).map(|(_, r)| r);
        let by_hand = adopted.contains(&parent);
        if let (Some(r), Some(body)) = (refs.filter(|r| r.reads(by_hand)), referenced.get(&id.to_ascii_lowercase())) {
            add(parent, Some(&id), r.made_with(body, by_hand), &mut found);
        }
    }
    // In the order they can go: each once nothing outside what goes before it uses it.
    let users = |c: &Implicit| -> Vec<String> {
        let refs = arm_type_of(&c.id).and_then(|t| crate::kinds::references_of(&t)).map(|(_, r)| r);
        match (refs, referenced.get(&c.id.to_ascii_lowercase())) {
            (Some(r), Some(body)) => (r.users)(body),
            _ => Vec::new(),
        }
    };
    let mut pending: Vec<Teardown> = Vec::new();
    let mut out: Vec<Teardown> = Vec::new();
    for t in found {
        if matches!(t.child.fate, ImplicitFate::Remains(_)) { out.push(t) } else { pending.push(t) }
    }
    let mut ordered: Vec<Teardown> = Vec::new();
    loop {
        let ready = pending.iter().position(|t| users(&t.child).iter().all(|u| gone.iter().any(|g| inside(g, u))));
        let Some(at) = ready else { break };
        let mut t = pending.remove(at);
        t.unused = !users(&t.child).is_empty();
        gone.push(t.child.id.clone());
        ordered.push(t);
    }
    for mut t in pending {
        let all_gone = gone.clone();
        t.used_by = users(&t.child).into_iter().find(|u| !all_gone.iter().any(|g| inside(g, u)));
        ordered.push(t);
    }
    ordered.extend(out);
    order_waits(decls, desired, bodies, referenced, deleting, &mut ordered);
    ordered
}

/// Fill each going child's [`Teardown::waits`] (what must be gone before it: the
/// declarations it was found through, the interface it was found through, what uses it,
/// each as the delete that removes it) and [`Teardown::holds_up`].
fn order_waits(
    decls: &[Decl],
    desired: &[Option<Desired>],
    bodies: &[Option<Value>],
    referenced: &std::collections::HashMap<String, Value>,
    deleting: &[usize],
    list: &mut [Teardown],
) {
    // The ids destroy deletes: declarations (not containers), then children.
    let mut removed: Vec<(String, Gone)> = Vec::new();
    for &i in deleting.iter().filter(|&&i| !decls[i].spec.contains_resources()) {
        let own = bodies.get(i).and_then(Option::as_ref).and_then(|b| b.get("id")?.as_str()).map(str::to_string);
        removed.extend(desired[i].iter().map(|w| w.id.clone()).chain(own).map(|id| (id, Gone::Decl(i))));
    }
    removed
        .extend(list.iter().enumerate().filter(|(_, t)| t.goes()).map(|(k, t)| (t.child.id.clone(), Gone::Child(k))));
    // A child that goes with its parent is gone when its parents are.
    let resolve = |g: Gone, list: &[Teardown]| -> Vec<Gone> {
        match g {
            Gone::Child(k) if !matches!(list[k].child.fate, ImplicitFate::After { .. }) => list[k].waits.clone(),
            g => vec![g],
        }
    };
    for k in 0..list.len() {
        if !list[k].goes() || !matches!(list[k].child.fate, ImplicitFate::After { .. }) {
            continue;
        }
        let body = referenced.get(&list[k].child.id.to_ascii_lowercase());
        let refs = arm_type_of(&list[k].child.id).and_then(|t| crate::kinds::references_of(&t)).map(|(_, r)| r);
        let mut users = match (refs, body) {
            (Some(r), Some(b)) => (r.users)(b),
            _ => Vec::new(),
        };
        users.extend(list[k].via.clone());
        let mut waits = list[k].waits.clone();
        for u in &users {
            // The nearest removed id containing it (an IP configuration lies in its interface).
            let by = removed.iter().filter(|(g, _)| inside(g, u)).max_by_key(|(g, _)| g.len()).map(|(_, w)| *w);
            for w in by.filter(|w| *w != Gone::Child(k)).map(|w| resolve(w, list)).unwrap_or_default() {
                if !waits.contains(&w) {
                    waits.push(w);
                }
            }
        }
        waits.sort_unstable();
        list[k].waits = waits;
    }
    // What must wait for each: never a declaration it waits for itself, even through another
    // child.
    for k in 0..list.len() {
        if !list[k].goes() || !matches!(list[k].child.fate, ImplicitFate::After { .. }) {
            continue;
        }
        let mut before: HashSet<usize> = HashSet::new();
        let mut stack = list[k].waits.clone();
        while let Some(w) = stack.pop() {
            match w {
                Gone::Decl(d) => {
                    before.insert(d);
                }
                Gone::Child(c) => stack.extend(list[c].waits.iter().copied()),
            }
        }
        let id = list[k].child.id.to_ascii_lowercase();
        let text = referenced.get(&id).map(|b| b.to_string().to_ascii_lowercase()).unwrap_or_default();
        let holds: Vec<usize> = deleting
            .iter()
            .copied()
            .filter(|d| !before.contains(d))
            .filter(|&d| {
                desired[d].as_ref().is_some_and(|w| {
                    let wid = w.id.to_ascii_lowercase();
                    inside(&wid, &id) || text.contains(&format!("\"{wid}\"")) || text.contains(&format!("\"{wid}/"))
                })
            })
            .collect();
        list[k].holds_up = holds;
    }
}

/// How destroy shows a [`Teardown`] child of `parent`, which it deletes (`action`); `decls`
/// names the other declarations it waits for (a vnet two VMs share).
pub(super) fn teardown_child(decls: &[Decl], parent: &str, t: &Teardown, action: ActionKind) -> ImplicitChild {
    match &t.used_by {
        Some(user) => ImplicitChild {
            parent: parent.to_string(),
            id: t.child.id.clone(),
            what: t.child.what.to_string(),
            action: ActionKind::NoOp,
            reason: format!("kept: {user} uses it, and this destroy keeps that"),
        },
        None => {
            let mut c = implicit_child(parent, t.child.clone(), action);
            if let (Some(via), ImplicitFate::After { .. }) = (&t.via, t.child.fate) {
                let name = via.rsplit('/').next().unwrap_or(via);
                let unused = if t.unused { ", and nothing else uses it" } else { "" };
                let others: String = t
                    .waits
                    .iter()
                    .filter_map(|w| match w {
                        Gone::Decl(d) if *d != t.parent => decls.get(*d).map(|x| format!(", `{}`", x.logical.value)),
                        _ => None,
                    })
                    .collect();
                c.reason = format!(
                    "`{name}` (made with `{parent}`) refers to it{unused}: deleted after `{parent}`{others} and what uses it"
                );
            }
            c
        }
    }
}

/// How destroy shows an implicit child of `parent`, which it deletes (`action`).
pub(super) fn implicit_child(parent: &str, c: Implicit, action: ActionKind) -> ImplicitChild {
    let (action, reason) = match c.fate {
        ImplicitFate::WithParent(why) => (ActionKind::Delete, format!("deleted with `{parent}` ({why})")),
        ImplicitFate::After { .. } => (
            ActionKind::Delete,
            format!("deleting `{parent}` would leave it (its deleteOption is not Delete): deleted after `{parent}`"),
        ),
        ImplicitFate::Remains(_) if action == ActionKind::Purge => {
            (ActionKind::Delete, format!("purged with `{parent}`"))
        }
        ImplicitFate::Remains(why) => (ActionKind::NoOp, why.to_string()),
    };
    ImplicitChild { parent: parent.to_string(), id: c.id, what: c.what.to_string(), action, reason }
}

/// Why destroy keeps a container: what it holds that the plan does not match (`type name`).
pub fn kept_reason(foreign: &[String]) -> String {
    format!("it holds resources this plan does not match: {} (use --force to delete them too)", foreign.join(", "))
}

/// What keeps a container (a resource group) that destroy would delete: what it holds
/// (`held`: id, ARM type) that is not declared, not made with what destroy deletes
/// (`children`, the orphans' too) and not an orphan, as `type name`.
pub fn kept_by(obs: &Observed, children: &[Teardown], held: &[(String, String)]) -> Vec<String> {
    let mut known: HashSet<String> = obs.desired.iter().flatten().map(|d| d.id.to_ascii_lowercase()).collect();
    known.extend(obs.bodies.iter().flatten().filter_map(|b| b.get("id")?.as_str()).map(str::to_ascii_lowercase));
    known.extend(children.iter().filter(|t| t.goes()).map(|t| t.child.id.to_ascii_lowercase()));
    for (id, t) in &obs.orphans {
        known.insert(id.to_ascii_lowercase());
        if let (Some((_, read)), Some(body)) =
            (crate::kinds::implicit_of_listed(t), obs.referenced.get(&id.to_ascii_lowercase()))
        {
            known.extend(read(body).into_iter().map(|c| c.id.to_ascii_lowercase()));
        }
    }
    held.iter()
        .filter(|(id, _)| !known.contains(&id.to_ascii_lowercase()))
        .map(|(id, t)| format!("{} {}", crate::kinds::kind_of_arm_type(t), id.rsplit('/').next().unwrap_or(id)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(fate: ImplicitFate) -> Implicit {
        Implicit { id: "/s/disks/d".into(), what: "OS disk", fate }
    }

    #[test]
    fn a_child_goes_with_its_parent_after_it_or_remains() {
        let with =
            implicit_child("vm", child(ImplicitFate::WithParent("its deleteOption is Delete")), ActionKind::Delete);
        assert_eq!(
            (with.action, with.reason.as_str()),
            (ActionKind::Delete, "deleted with `vm` (its deleteOption is Delete)")
        );
        let after = implicit_child("vm", child(ImplicitFate::After { api_version: "2024-03-02" }), ActionKind::Delete);
        assert_eq!(after.action, ActionKind::Delete);
        assert!(after.reason.contains("deleted after `vm`"), "{}", after.reason);
        let stays = implicit_child("kv", child(ImplicitFate::Remains("soft-deleted")), ActionKind::Delete);
        assert_eq!((stays.action, stays.reason.as_str()), (ActionKind::NoOp, "soft-deleted"));
        let purged = implicit_child("kv", child(ImplicitFate::Remains("soft-deleted")), ActionKind::Purge);
        assert_eq!(purged.action, ActionKind::Delete);
    }

    fn vm(nic: &str) -> Value {
        serde_json::json!({ "id": "/s/rg/providers/Microsoft.Compute/virtualMachines/vm", "properties": {
            "storageProfile": { "osDisk": { "managedDisk": { "id": "/s/rg/providers/Microsoft.Compute/disks/os" } } },
            "networkProfile": { "networkInterfaces": [{ "id": nic }] },
        } })
    }

    #[test]
    fn arm_types_come_from_ids() {
        let nic = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/n";
        assert_eq!(arm_type_of(nic).as_deref(), Some("Microsoft.Network/networkInterfaces"));
        let sub = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/d";
        assert_eq!(arm_type_of(sub).as_deref(), Some("Microsoft.Network/virtualNetworks/subnets"));
        assert_eq!(arm_type_of("/subscriptions/s/resourceGroups/rg"), None);
    }

    /// A hand-made VM (no declarations for its network): its disk and interface from its body,
    /// then what the interface names; the vnet goes last, unless another interface uses it.
    #[test]
    fn a_vm_s_network_goes_after_it_in_order_and_a_shared_vnet_stays() {
        use crate::kinds::Kind;
        let nic = "/s/rg/providers/Microsoft.Network/networkInterfaces/myvm123";
        let pip = "/s/rg/providers/Microsoft.Network/publicIPAddresses/myVM-ip";
        let nsg = "/s/rg/providers/Microsoft.Network/networkSecurityGroups/myVM-nsg";
        let vnet = "/s/rg/providers/Microsoft.Network/virtualNetworks/rg-vnet";
        let node = crate::model::yaml::parse(
            "type: virtual_machine\nname: vm\nresource_group: rg\nimage: Ubuntu2204\nadmin: {username: a, password: {generate: 24}}\nnetwork: {nic: \"${n}\"}\n",
        )
        .expect("yaml");
        let kind = &crate::kinds::vm::VirtualMachineKind;
        let decl = Decl {
            logical: crate::model::Sp::new("vm".into(), crate::model::Span::default()),
            kind,
            spec: kind.parse(&node).expect("spec"),
            expanded_from: None,
        };
        let nic_body = serde_json::json!({ "id": nic, "properties": {
            "virtualMachine": { "id": "/s/rg/providers/Microsoft.Compute/virtualMachines/vm" },
            "networkSecurityGroup": { "id": nsg },
            "ipConfigurations": [{ "id": format!("{nic}/ipConfigurations/ipconfig1"), "properties": {
                "publicIPAddress": { "id": pip }, "subnet": { "id": format!("{vnet}/subnets/default") } } }],
        } });
        let vnet_body = |users: &[&str]| {
            let ip: Vec<Value> = users.iter().map(|u| serde_json::json!({ "id": u })).collect();
            serde_json::json!({ "id": vnet, "properties": { "subnets": [{ "properties": { "ipConfigurations": ip } }] } })
        };
        let mine = format!("{nic}/ipConfigurations/ipconfig1");
        let mut referenced = std::collections::HashMap::from([
            (nic.to_ascii_lowercase(), nic_body),
            (vnet.to_ascii_lowercase(), vnet_body(&[&mine])),
        ]);
        let bodies = vec![Some(vm(nic))];
        let got = teardown(std::slice::from_ref(&decl), &[None], &bodies, &referenced, &[0], &[0]);
        let order: Vec<(&str, bool)> =
            got.iter().map(|t| (t.child.id.rsplit('/').next().unwrap_or(""), t.goes())).collect();
        assert_eq!(
            order,
            vec![("os", true), ("myvm123", true), ("myVM-ip", true), ("myVM-nsg", true), ("rg-vnet", true)]
        );
        assert_eq!(got[4].via.as_deref(), Some(nic));
        // Another interface in the subnet: the vnet stays, named by what uses it.
        let other = "/s/rg/providers/Microsoft.Network/networkInterfaces/other/ipConfigurations/ipconfig1";
        referenced.insert(vnet.to_ascii_lowercase(), vnet_body(&[&mine, other]));
        let got = teardown(std::slice::from_ref(&decl), &[None], &bodies, &referenced, &[0], &[0]);
        let kept = got.iter().find(|t| t.child.id == vnet).expect("the vnet");
        assert_eq!((kept.goes(), kept.used_by.as_deref()), (false, Some(other)));
        let shown = teardown_child(std::slice::from_ref(&decl), "vm", kept, ActionKind::AdoptDelete);
        assert_eq!(shown.action, ActionKind::NoOp);
        assert!(shown.reason.contains(other), "{}", shown.reason);
        // Nothing is deleted for a parent that is not deleted.
        assert!(teardown(std::slice::from_ref(&decl), &[None], &bodies, &referenced, &[], &[]).is_empty());
    }

    /// Two hand-made VMs whose interfaces share a vnet and a security group, the vnet's subnet
    /// holding a group of its own: each shared one found once, waiting for both interfaces
    /// (and so both VMs); the subnet's group waits for the vnet.
    #[test]
    fn a_shared_child_waits_for_everything_that_uses_it() {
        use crate::kinds::Kind;
        let rg = "/s/rg/providers/Microsoft.Network";
        let (vnet, nsg, sub_nsg) = (
            format!("{rg}/virtualNetworks/v"),
            format!("{rg}/networkSecurityGroups/n"),
            format!("{rg}/networkSecurityGroups/sn"),
        );
        let kind = &crate::kinds::vm::VirtualMachineKind;
        let decl = |name: &str| {
            let text = format!(
                "type: virtual_machine\nname: {name}\nresource_group: rg\nimage: Ubuntu2204\nadmin: {{username: a, password: {{generate: 24}}}}\nnetwork: {{nic: \"${{n}}\"}}\n"
            );
            let node = crate::model::yaml::parse(&text).expect("yaml");
            Decl {
                logical: crate::model::Sp::new(name.into(), crate::model::Span::default()),
                kind,
                spec: kind.parse(&node).expect("spec"),
                expanded_from: None,
            }
        };
        let nic = |k: &str| format!("{rg}/networkInterfaces/nic{k}");
        let vm_body = |k: &str| {
            serde_json::json!({ "id": format!("/s/rg/providers/Microsoft.Compute/virtualMachines/vm{k}"), "properties": {
                "networkProfile": { "networkInterfaces": [{ "id": nic(k) }] } } })
        };
        let nic_body = |k: &str| {
            serde_json::json!({ "id": nic(k), "properties": {
                "virtualMachine": { "id": format!("/s/rg/providers/Microsoft.Compute/virtualMachines/vm{k}") },
                "networkSecurityGroup": { "id": nsg },
                "ipConfigurations": [{ "id": format!("{}/ipConfigurations/c", nic(k)),
                    "properties": { "subnet": { "id": format!("{vnet}/subnets/d") } } }] } })
        };
        let referenced = std::collections::HashMap::from([
            (nic("1").to_ascii_lowercase(), nic_body("1")),
            (nic("2").to_ascii_lowercase(), nic_body("2")),
            (
                vnet.to_ascii_lowercase(),
                serde_json::json!({ "id": vnet, "properties": { "subnets": [{
                "id": format!("{vnet}/subnets/d"), "properties": {
                    "networkSecurityGroup": { "id": sub_nsg },
                    "ipConfigurations": [{ "id": format!("{}/ipConfigurations/c", nic("1")) },
                                         { "id": format!("{}/ipConfigurations/c", nic("2")) }] } }] } }),
            ),
            (
                nsg.to_ascii_lowercase(),
                serde_json::json!({ "id": nsg, "properties": {
                "networkInterfaces": [{ "id": nic("1") }, { "id": nic("2") }] } }),
            ),
            (
                sub_nsg.to_ascii_lowercase(),
                serde_json::json!({ "id": sub_nsg, "properties": {
                "subnets": [{ "id": format!("{vnet}/subnets/d") }] } }),
            ),
        ]);
        let decls = [decl("vm1"), decl("vm2")];
        let bodies = vec![Some(vm_body("1")), Some(vm_body("2"))];
        let got = teardown(&decls, &[None, None], &bodies, &referenced, &[0, 1], &[0, 1]);
        let at = |id: &str| got.iter().position(|t| t.child.id == id).expect(id);
        for shared in [&vnet, &nsg, &sub_nsg] {
            assert_eq!(got.iter().filter(|t| &t.child.id == shared).count(), 1, "{shared}");
            assert!(got[at(shared)].goes(), "{shared}");
        }
        let (n1, n2) = (Gone::Child(at(&nic("1"))), Gone::Child(at(&nic("2"))));
        assert_eq!(got[at(&nic("1"))].waits, vec![Gone::Decl(0)]);
        assert_eq!(got[at(&nic("2"))].waits, vec![Gone::Decl(1)]);
        for shared in [&vnet, &nsg] {
            let w = &got[at(shared)].waits;
            assert!(w.contains(&n1) && w.contains(&n2), "{shared}: {w:?}");
        }
        assert!(got[at(&sub_nsg)].waits.contains(&Gone::Child(at(&vnet))), "{:?}", got[at(&sub_nsg)].waits);
        // Shown under the first VM, naming the second.
        let shown = teardown_child(&decls, "vm1", &got[at(&vnet)], ActionKind::AdoptDelete);
        assert!(shown.reason.contains("deleted after `vm1`, `vm2` and what uses it"), "{}", shown.reason);
    }
}
