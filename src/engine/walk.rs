//! The apply and destroy walkers: [`Driver`]s for the [`Schedule`], which owns the order,
//! the parallelism bound, skipping and cancellation. A walker decides each resource's
//! action (through [`crate::plan`]) and the request for it (through [`plane`]), and turns
//! what comes back into outcomes and events. Nothing here names a kind: kind-specific
//! behaviour comes from the kind's [`crate::kinds::Spec`] and its desired state.

use std::time::Duration;

use serde_json::Value;

use super::context::{Event, Outcome, Shared};
use super::observe::{read, record_decl};
use super::plane::{self, Done, PlaneCx, SoftDeleted, Work};
use super::schedule::{Driver, Fate, Launch, Priority, Schedule, Tasks};
use super::secrets;
use crate::arm::Error;
use crate::kinds::ImplicitFate;
use crate::kinds::env::{Desired, Owner, Plane};
use crate::plan::{self, ActionKind, Observed};

/// How long a freshly created principal may be unknown to RBAC before we give up (the
/// default of `--principal-wait`).
pub const PRINCIPAL_WINDOW: Duration = Duration::from_secs(120);

/// The api-version idlab uses for an ARM type.
pub fn api_for_type(t: &str) -> &'static str {
    crate::kinds::api_version_of_arm_type(t)
}

/// One line of a walk's summary: logical name, kind, outcome.
pub type Row = (String, String, Outcome);

/// The replication window for a role assignment: the configured one for principals the plan
/// creates, none (fail fast) for any other.
fn role_window(sh: &Shared<'_>, d: &Desired) -> Option<Duration> {
    // Custom roles carry the same mark but are plain PUTs.
    if d.owner != Owner::Description || !d.id.contains("/roleAssignments/") {
        None
    } else if d.principal_from_plan {
        Some(sh.cx.principal_wait)
    } else {
        Some(Duration::ZERO)
    }
}

/// The body of a create: the desired body, the fields a kind sends only at creation
/// ([`crate::kinds::Spec::create_only`]), and the secrets.
fn create_body(sh: &Shared<'_>, d: &Desired, create_only: &[(String, Value)]) -> Result<Value, Error> {
    let mut body = d.body.clone();
    for (ptr, v) in create_only {
        if v.to_string().contains(crate::kinds::env::UNKNOWN) {
            return Err(Error::new("Unresolved", format!("{} still depends on values that are not known", d.id)));
        }
        let (parent, key) = ptr.rsplit_once('/').unwrap_or(("", ptr));
        if let Some(obj) = body.pointer_mut(parent).and_then(Value::as_object_mut) {
            obj.insert(key.to_string(), v.clone());
        }
    }
    for (ptr, s) in &d.secrets {
        let v = secrets::resolve(s, &sh.plan.base_dir).map_err(|e| Error::new("SecretUnavailable", e.0))?;
        let (parent, key) = ptr.rsplit_once('/').unwrap_or(("", ptr));
        if let Some(obj) = body.pointer_mut(parent).and_then(Value::as_object_mut) {
            obj.insert(key.to_string(), Value::String(v.expose().clone()));
        }
    }
    Ok(body)
}

/// Everything that depends on node `i`, transitively.
fn dependents_closure(edges: &[(usize, usize)], n: usize, i: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut stack = vec![i];
    let mut seen = vec![false; n];
    while let Some(x) = stack.pop() {
        for &(from, to) in edges {
            if from == x && !seen[to] {
                seen[to] = true;
                out.push(to);
                stack.push(to);
            }
        }
    }
    out
}

/// The declarations `--target` leaves out.
fn excluded(sh: &Shared<'_>) -> Vec<usize> {
    (0..sh.plan.decls.len()).filter(|i| sh.cx.only.as_ref().is_some_and(|o| !o.contains(i))).collect()
}

/// The summary rows of the declarations, in `order`.
fn rows(sh: &Shared<'_>, order: Vec<usize>, excluded: &[usize], outcome: &[Option<Outcome>]) -> Vec<Row> {
    order
        .into_iter()
        .filter(|i| !excluded.contains(i))
        .map(|i| {
            let d = &sh.plan.decls[i];
            (
                d.logical.value.clone(),
                d.kind.type_name().to_string(),
                outcome[i].clone().unwrap_or(Outcome::Skipped("not reached".into())),
            )
        })
        .collect()
}

/// Orphans in the order they go: role assignments first, groups last.
fn sorted_orphans(sh: &Shared<'_>, orphans: &[(String, String)]) -> Vec<(String, String)> {
    let mut orphans = if sh.cx.only.is_some() { Vec::new() } else { orphans.to_vec() };
    orphans.sort_by_key(|(id, t)| (orphan_rank(t), std::cmp::Reverse(id.len())));
    orphans
}

/// Delete one orphan and report it.
async fn delete_orphan(sh: &Shared<'_>, id: String, t: &str) -> Row {
    let kind = crate::kinds::kind_of_arm_type(t);
    let o = match sh.cx.client.delete(&id, api_for_type(t)).await {
        Ok(_) => Outcome::Deleted(id.clone()),
        Err(e) => Outcome::Failed(e),
    };
    sh.reporter.event(Event::Finished { name: id.clone(), outcome: o.clone() });
    (id.rsplit('/').next().unwrap_or_default().to_string(), kind, o)
}

fn orphan_rank(t: &str) -> u8 {
    match t.to_ascii_lowercase().as_str() {
        "microsoft.authorization/roleassignments" => 0,
        "microsoft.compute/virtualmachines" => 1,
        "microsoft.network/networkinterfaces" => 2,
        "microsoft.resources/resourcegroups" => 9,
        _ => 5,
    }
}

/// The apply walk's state, driven by the scheduler.
struct ApplyWalk<'s, 'a> {
    sh: &'s Shared<'a>,
    obs: Observed,
    outcome: Vec<Option<Outcome>>,
    /// Per node: its longest remaining path, the priority its requests are paced at (the
    /// scheduler's order, carried to the pacer: across a fleet's instances too).
    priority: Vec<u64>,
    /// Per node: its action is an adoption (`--adopt`), so its write ends as `Adopted`.
    adopting: Vec<bool>,
}

impl ApplyWalk<'_, '_> {
    /// Settle node `i` without a request.
    fn settle(&mut self, i: usize, o: Outcome) -> Launch {
        let fate = apply_fate(&o);
        self.outcome[i] = Some(o);
        Launch::Settled(fate)
    }

    /// What ARM holds for a desired resource. A resource whose name depended on values
    /// known only now may already exist. Role assignments need no look: their name is derived
    /// from (scope, principal, role), so the PUT itself is idempotent. Anything else is read
    /// first (rare: only names built from values known after apply).
    async fn have(&self, i: usize, want: &Desired) -> Result<Option<Value>, Error> {
        let have = self.obs.bodies[i].clone();
        // Observe could not read it before what it depends on was in place: now it is.
        if self.obs.unread.contains(&i) {
            return read(&self.sh.cx.client, want, &self.sh.plan.base_dir).await;
        }
        if have.is_none()
            && want.owner != Owner::Description
            && self.obs.desired[i].as_ref().is_none_or(|o| !o.is_known())
            && want.is_known()
        {
            return read(&self.sh.cx.client, want, &self.sh.plan.base_dir).await;
        }
        Ok(have)
    }

    /// The request for node `i`'s action, or the outcome that settles it without one.
    fn work(&mut self, i: usize, want: &Desired, have: Option<&Value>) -> Result<Work, Outcome> {
        let sh = self.sh;
        let d = &sh.plan.decls[i];
        let name = &d.logical.value;
        let mut action = plan::decide(name, d.kind.type_name(), &sh.plan.name, want, have);
        if sh.cx.purge {
            plan::purge_instead(&mut action);
        }
        let create_only = d.spec.create_only(&sh.cx.env(sh.plan, name, &self.obs.values));
        let failed = |code: &str, msg: String| Outcome::Failed(Error::new(code, msg));
        let work = match action.action {
            ActionKind::NoOp => {
                record_decl(sh.cx, sh.plan, i, &mut self.obs.values, &want.id, have);
                return Err(Outcome::Unchanged);
            }
            ActionKind::Conflict if plan::is_soft_deleted_elsewhere(&action) => {
                return Err(failed(
                    "SoftDeletedElsewhere",
                    format!("{} {}", want.id, action.reason.unwrap_or_default()),
                ));
            }
            ActionKind::Conflict => {
                return Err(failed("OwnedByAnotherPlan", format!("{} {}", want.id, action.reason.unwrap_or_default())));
            }
            ActionKind::Adopt if !sh.cx.adopt && !plan::adopts_without_flag(&action) => {
                return Err(failed(
                    "NotOwned",
                    format!(
                        "{} exists without this plan's idlab-plan tag; rerun with --adopt to take it over",
                        want.id
                    ),
                ));
            }
            _ if !want.is_known() => {
                return Err(failed("Unresolved", format!("{} still depends on values that are not known", want.id)));
            }
            ActionKind::Create => Work::Put {
                id: want.id.clone(),
                api: want.api_version,
                body: create_body(sh, want, &create_only).map_err(Outcome::Failed)?,
                role: role_window(sh, want),
                update: false,
            },
            // At the id ARM holds it under: a role assignment adopted from one made by hand
            // keeps its own name (the PUT puts the plan's description on it).
            ActionKind::Update | ActionKind::Adopt => match d.spec.update_patch(&want.body, have) {
                Some(p) => Work::Patch {
                    id: want.id.clone(),
                    api: want.api_version,
                    body: p.body,
                    etag: if p.if_match {
                        have.and_then(|h| h.get("etag")).and_then(Value::as_str).map(str::to_string)
                    } else {
                        None
                    },
                },
                None => Work::Put {
                    id: have
                        .filter(|_| want.plane == Plane::Arm)
                        .and_then(|h| h.get("id"))
                        .and_then(Value::as_str)
                        .map_or_else(|| want.id.clone(), str::to_string),
                    api: want.api_version,
                    body: want.body.clone(),
                    role: role_window(sh, want),
                    update: true,
                },
            },
            ActionKind::Recover => Work::Recover(plane::soft(want, &want.id, have)),
            ActionKind::Purge => {
                let body = create_body(sh, want, &create_only).map_err(Outcome::Failed)?;
                Work::PurgeCreate(SoftDeleted { body, ..plane::soft(want, &want.id, have) })
            }
            ActionKind::Replace if want.soft_delete && !sh.cx.purge => {
                return Err(failed(
                    "PurgeNeeded",
                    format!(
                        "{}: replacing it deletes it, and its soft-deleted copy keeps the name until purged; rerun with --purge to purge it in between",
                        want.id
                    ),
                ));
            }
            ActionKind::Replace => Work::Replace {
                id: want.id.clone(),
                api: want.api_version,
                body: create_body(sh, want, &create_only).map_err(Outcome::Failed)?,
                purge_at: want.soft_delete.then(|| plane::soft(want, &want.id, have).location),
            },
            ActionKind::Delete | ActionKind::AdoptDelete => Work::Delete { id: want.id.clone(), api: want.api_version },
        };
        let cx = PlaneCx {
            base_dir: &sh.plan.base_dir,
            plan: &sh.plan.name,
            principal_wait: sh.cx.principal_wait,
            purge: sh.cx.purge,
            blob: d.spec.upload(&sh.cx.env(sh.plan, name, &self.obs.values)),
        };
        let work = plane::for_change(cx, want, have, work).map_err(Outcome::Failed)?;
        self.adopting[i] = action.action == ActionKind::Adopt;
        self.sh.reporter.event(Event::Started {
            name: name.clone(),
            kind: d.kind.type_name().into(),
            action: action.action,
        });
        Ok(work)
    }
}

/// A node's error as its outcome: a wait ended by Ctrl-C is not a failure of the resource
/// (the service may still finish the request; the next run sees how it ended).
fn failed(e: Error) -> Outcome {
    if e.code == "Interrupted" {
        Outcome::Skipped(format!("interrupted while waiting for {}; the service may still finish it", e.operation))
    } else {
        Outcome::Failed(e)
    }
}

/// The outcome of an adoption's write (the PUT or PATCH that puts the plan's mark on it) is
/// an adoption, whatever the plane answered it as.
fn adopted(o: Outcome, adopting: bool) -> Outcome {
    match o {
        Outcome::Created(id) | Outcome::Updated(id) if adopting => Outcome::Adopted(id),
        o => o,
    }
}

/// Apply: a failed or skipped node blocks what depends on it.
fn apply_fate(o: &Outcome) -> Fate {
    if matches!(o, Outcome::Failed(_) | Outcome::Skipped(_)) { Fate::Blocks } else { Fate::Done }
}

impl Driver for ApplyWalk<'_, '_> {
    type Out = Done;

    async fn launch(&mut self, i: usize, tasks: &mut Tasks<Done>) -> Launch {
        let sh = self.sh;
        let d = &sh.plan.decls[i];
        let Some(mut want) = d.spec.desired(&sh.cx.env(sh.plan, &d.logical.value, &self.obs.values)) else {
            return self
                .settle(i, Outcome::Skipped(format!("{} is applied by a later version of idlab", d.kind.type_name())));
        };
        // The lifecycle tags the plan was made with (plan::stamp).
        if let Some(planned) = &self.obs.desired[i] {
            crate::plan::carry_stamp(planned, &mut want);
        }
        // Unknown state: do not write over something that may be someone else's.
        let have = match self.have(i, &want).await {
            Ok(h) => h,
            Err(e) => return self.settle(i, Outcome::Failed(e)),
        };
        match self.work(i, &want, have.as_ref()) {
            Ok(work) => {
                self.obs.desired[i] = Some(want);
                let client = sh.cx.client.clone();
                let priority = self.priority.get(i).copied().unwrap_or(0);
                tasks.spawn(i, crate::arm::pace::with_priority(priority, plane::run(client, work)));
                Launch::Spawned
            }
            Err(o) => self.settle(i, o),
        }
    }

    fn land(&mut self, i: usize, out: Done) -> Fate {
        let sh = self.sh;
        let o = match out {
            Ok((o, body)) => {
                let id = self.obs.desired[i].as_ref().map(|d| d.id.clone()).unwrap_or_default();
                record_decl(sh.cx, sh.plan, i, &mut self.obs.values, &id, body.as_ref());
                self.obs.bodies[i] = body;
                adopted(o, self.adopting[i])
            }
            Err(e) => failed(e),
        };
        sh.reporter.event(Event::Finished { name: sh.plan.decls[i].logical.value.clone(), outcome: o.clone() });
        let fate = apply_fate(&o);
        self.outcome[i] = Some(o);
        fate
    }

    fn blocked(&mut self, i: usize, by: usize) {
        self.outcome[i] = Some(Outcome::Skipped(format!(
            "depends on `{}`, which did not apply",
            self.sh.plan.decls[by].logical.value
        )));
    }

    fn cancelled(&mut self, i: usize) {
        self.outcome[i] = Some(Outcome::Skipped("interrupted before it started".into()));
    }
}

/// Converge: create, update, replace or adopt every declared resource, then delete orphans.
pub async fn apply(sh: &Shared<'_>, obs: Observed) -> Vec<Row> {
    let n = sh.plan.decls.len();
    let cost = sh.plan.dag.remaining_cost();
    let priority = if sh.cx.fifo { Priority::Fifo } else { Priority::LongestFirst(cost.clone()) };
    let waits: Vec<Vec<usize>> = (0..n).map(|i| sh.plan.dag.dependencies(i)).collect();
    let mut schedule = Schedule::new(waits, sh.cx.parallelism, priority);
    let excluded = excluded(sh);
    let paced = if sh.cx.fifo { vec![0; n] } else { cost };
    let mut walk = ApplyWalk { sh, obs, outcome: vec![None; n], priority: paced, adopting: vec![false; n] };
    for &i in &excluded {
        walk.outcome[i] = Some(Outcome::Unchanged);
        schedule.settle(i, Fate::Done);
    }
    schedule.run(&mut walk, &sh.cx.cancel).await;
    let order = sh.plan.dag.topo_order().unwrap_or_else(|| (0..n).collect());
    let mut results = rows(sh, order, &excluded, &walk.outcome);
    // Orphans: role assignments first, then the rest, groups last (not with --target).
    let orphans = if sh.cx.cancel.is_cancelled() { Vec::new() } else { sorted_orphans(sh, &walk.obs.orphans) };
    for (id, t) in orphans {
        let kind = crate::kinds::kind_of_arm_type(&t);
        sh.reporter.event(Event::Started { name: id.clone(), kind, action: ActionKind::Delete });
        results.push(delete_orphan(sh, id, &t).await);
    }
    results
}

/// The destroy walk's state, driven by the scheduler.
struct DestroyWalk<'s, 'a> {
    sh: &'s Shared<'a>,
    obs: &'s Observed,
    outcome: Vec<Option<Outcome>>,
    /// Children that go with their parent: `(child, parent)`.
    with_parent: Vec<(usize, usize)>,
    /// Per node: adopted and deleted (`--adopt`: it matches without this plan's mark).
    adopting: Vec<bool>,
    /// The nodes after the declarations': what a delete leaves that destroy deletes itself
    /// (a disk whose deleteOption is not Delete, what a hand-made VM's interface names), each
    /// once, after everything that uses it: `(id, api)`.
    leftovers: Vec<(String, &'static str)>,
    /// Per declaration: a leftover waits for its delete (a hand-made VM's disks and network
    /// wait for the VM). Its wait is not ended by Ctrl-C: once it is gone, a later destroy
    /// could not find what it leaves, so the walk finishes those ([`finish_leftovers`]).
    anchors: Vec<bool>,
}

impl DestroyWalk<'_, '_> {
    /// The name of node `i` for people: a declaration's logical name, a leftover's own.
    fn name(&self, i: usize) -> String {
        let n = self.sh.plan.decls.len();
        match self.leftovers.get(i.wrapping_sub(n)) {
            Some((id, _)) if i >= n => id.rsplit('/').next().unwrap_or(id).to_string(),
            _ => self.sh.plan.decls[i].logical.value.clone(),
        }
    }
}

/// Destroy: a node that failed or is kept keeps what it depends on.
fn destroy_fate(o: &Outcome) -> Fate {
    if matches!(o, Outcome::Failed(_) | Outcome::Kept(_)) { Fate::Blocks } else { Fate::Done }
}

impl Driver for DestroyWalk<'_, '_> {
    type Out = Done;

    async fn launch(&mut self, i: usize, tasks: &mut Tasks<Done>) -> Launch {
        let (sh, obs) = (self.sh, self.obs);
        let n = sh.plan.decls.len();
        if let Some((id, api)) = self.leftovers.get(i.wrapping_sub(n)).filter(|_| i >= n).cloned() {
            // A delete of what is gone already (Azure deleted it with its parent) answers 204.
            // Found through what is gone by now: Ctrl-C does not end its wait.
            let client = unstoppable(&sh.cx.client);
            tasks.spawn(i, async move {
                client.delete(&id, api).await?;
                Ok((Outcome::Deleted(id), None))
            });
            return Launch::Spawned;
        }
        let Some(w) = &obs.desired[i] else {
            // Settled before the walk; never reached.
            return Launch::Settled(Fate::Done);
        };
        let d = &sh.plan.decls[i];
        let purge = w.soft_delete && sh.cx.purge;
        let adopting = self.adopting[i];
        sh.reporter.event(Event::Started {
            name: d.logical.value.clone(),
            kind: d.kind.type_name().into(),
            action: match (purge, adopting) {
                (true, _) => ActionKind::Purge,
                (false, true) => ActionKind::AdoptDelete,
                (false, false) => ActionKind::Delete,
            },
        });
        // A child without a mark of its own (a SQL server's Entra admin) goes with its
        // parent when that is deleted too: Azure may refuse to delete it alone (an
        // Entra-only server must keep its admin), and the parent's delete removes it. Not
        // when the parent is only soft-deleted (a vault): recovering it would bring the
        // child back, so the child is removed for real; except in a teardown (`--adopt`),
        // which writes nothing: removing an access-policy entry is a write to its vault.
        if w.owner == Owner::Parent
            && let Some(p) = plan::parent_of(&obs.desired, i)
            && self.outcome[p].is_none()
            && obs.desired[p].as_ref().is_some_and(|x| !x.soft_delete || self.adopting[i])
        {
            // Provisional: settled (and reported) once the parent has its own outcome.
            let id = format!("{} (with {})", w.id, obs.desired[p].as_ref().map_or("its parent", |x| x.id.as_str()));
            self.outcome[i] = Some(if adopting { Outcome::AdoptedDeleted(id) } else { Outcome::Deleted(id) });
            self.with_parent.push((i, p));
            return Launch::Settled(Fate::Done);
        }
        let have = obs.bodies[i].as_ref();
        let id = have.and_then(|b| b.get("id")).and_then(Value::as_str).map_or(w.id.clone(), str::to_string);
        let work = if purge {
            Work::DeletePurge(plane::soft(w, &id, have), have.is_some_and(plan::is_soft_deleted))
        } else {
            plane::for_delete(w, id, have)
        };
        // What its delete would leave behind (a disk whose deleteOption is not Delete, the
        // public IP of an interface made with it) are nodes of their own, after it
        // (`leftovers`). Deleted explicitly rather than by a PATCH of the VM's
        // `deleteOption`s first: a teardown writes nothing.
        let client = if self.anchors[i] { unstoppable(&sh.cx.client) } else { sh.cx.client.clone() };
        tasks.spawn(i, async move {
            let (o, body) = plane::run(client.clone(), work).await?;
            let o = match o {
                Outcome::Deleted(id) if adopting => Outcome::AdoptedDeleted(id),
                o => o,
            };
            Ok((o, body))
        });
        Launch::Spawned
    }

    fn land(&mut self, i: usize, out: Done) -> Fate {
        let o = match out {
            Ok((o, _)) => o,
            Err(e) => failed(e),
        };
        if i < self.sh.plan.decls.len() {
            self.sh.reporter.event(Event::Finished { name: self.name(i), outcome: o.clone() });
        } else {
            // A leftover is no action of the plan's: a note, not a step of the count.
            let id = &self.leftovers[i - self.sh.plan.decls.len()].0;
            let kind = plan::arm_type_of(id).map(|t| crate::kinds::kind_of_arm_type(&t)).unwrap_or_default();
            let word = if matches!(o, Outcome::Deleted(_)) { "deleted" } else { "not deleted" };
            self.sh.reporter.event(Event::Note(format!("{} ({kind}): {word}, after what used it", self.name(i))));
        }
        let fate = destroy_fate(&o);
        self.outcome[i] = Some(o);
        fate
    }

    fn blocked(&mut self, i: usize, by: usize) {
        let why = if i < self.sh.plan.decls.len() {
            format!("`{}` depends on it and was not deleted", self.name(by))
        } else {
            format!("it goes after `{}`, which was not deleted", self.name(by))
        };
        self.outcome[i] = Some(Outcome::Kept(why));
    }

    fn cancelled(&mut self, i: usize) {
        let why = if i < self.sh.plan.decls.len() {
            "interrupted before it started"
        } else {
            // Unless all it waits for is gone: then finish_leftovers deletes it.
            "interrupted before it started; what it was found through is not all deleted, so a later destroy finds it again"
        };
        self.outcome[i] = Some(Outcome::Skipped(why.into()));
    }
}

/// A client whose waits Ctrl-C does not end (a second Ctrl-C still quits at once).
fn unstoppable(client: &crate::arm::Client) -> crate::arm::Client {
    let mut c = client.clone();
    c.stop = crate::arm::client::Stop::new();
    c
}

/// After an interrupted destroy: delete, in order, the leftovers everything they wait for
/// is gone for (a hand-made VM deleted, its interface, public IP, security group, vnet):
/// nothing would find them later. Their waits are not ended by Ctrl-C either.
async fn finish_leftovers(sh: &Shared<'_>, walk: &mut DestroyWalk<'_, '_>, waits: &[Vec<usize>]) {
    let n = sh.plan.decls.len();
    let client = unstoppable(&sh.cx.client);
    for (k, (id, api)) in walk.leftovers.clone().into_iter().enumerate() {
        let gone = |j: &usize| {
            matches!(walk.outcome[*j], Some(Outcome::Deleted(_) | Outcome::AdoptedDeleted(_) | Outcome::Purged(_)))
        };
        if !matches!(walk.outcome[n + k], Some(Outcome::Skipped(_))) || !waits[n + k].iter().all(gone) {
            continue;
        }
        let o = match client.delete(&id, api).await {
            Ok(_) => Outcome::Deleted(id),
            Err(e) => Outcome::Failed(e),
        };
        walk.land(n + k, Ok((o, None)));
    }
}

/// Before the walk: what destroy leaves alone (excluded, not served, absent, not owned and
/// not adopted, already soft-deleted without `--purge`), as [`plan::destroy_action`] decides;
/// `adopting` marks what it adopts and deletes.
fn settle_before(sh: &Shared<'_>, obs: &Observed, outcome: &mut [Option<Outcome>], adopting: &mut [bool]) {
    let opts = sh.cx.plan_options(sh.plan);
    for (i, o) in outcome.iter_mut().enumerate() {
        if o.is_some() {
            continue;
        }
        let d = &sh.plan.decls[i];
        *o = match (&obs.desired[i], &obs.bodies[i]) {
            (None, _) => {
                Some(Outcome::Skipped(format!("{} is handled by a later version of idlab", d.kind.type_name())))
            }
            (Some(_), None) => Some(Outcome::Unchanged),
            (Some(w), Some(have)) => {
                let owned = plan::owned(&sh.plan.name, &obs.desired, &obs.bodies, i);
                match plan::destroy_action(&opts, w, have, owned) {
                    (ActionKind::NoOp, _) if plan::is_soft_deleted(have) => Some(Outcome::Unchanged),
                    (ActionKind::NoOp, why) => {
                        Some(Outcome::Kept(why.unwrap_or_else(|| plan::not_owned_reason(w.owner))))
                    }
                    (a, _) => {
                        adopting[i] = a == ActionKind::AdoptDelete;
                        None
                    }
                }
            }
        };
    }
}

/// What goes with the declarations destroy deletes ([`plan::teardown`]), and the containers
/// (resource groups) that stay because they hold what the plan does not match (unless
/// `--force`): pure, from what observe read.
fn plan_teardown(sh: &Shared<'_>, obs: &Observed, outcome: &mut [Option<Outcome>]) -> Vec<plan::Teardown> {
    let deleting: Vec<usize> = (0..outcome.len()).filter(|&i| outcome[i].is_none()).collect();
    // Made by hand: deleted without this plan's mark (adopted, or forced).
    let adopted: Vec<usize> =
        deleting.iter().copied().filter(|&i| !plan::owned(&sh.plan.name, &obs.desired, &obs.bodies, i)).collect();
    let children = plan::teardown(&sh.plan.decls, &obs.desired, &obs.bodies, &obs.referenced, &deleting, &adopted);
    if sh.cx.force {
        return children;
    }
    for (i, held) in &obs.contents {
        if outcome[*i].is_some() {
            continue;
        }
        let foreign = plan::kept_by(obs, &children, held);
        if !foreign.is_empty() {
            outcome[*i] = Some(Outcome::Kept(plan::kept_reason(&foreign)));
        }
    }
    children
}

/// Tear down what the plan owns, dependents before what they depend on.
pub async fn destroy(sh: &Shared<'_>, obs: Observed) -> Vec<Row> {
    let n = sh.plan.decls.len();
    let mut outcome: Vec<Option<Outcome>> = vec![None; n];
    let excluded = excluded(sh);
    for &i in &excluded {
        outcome[i] = Some(Outcome::Unchanged);
    }
    // Role assignments and other non-ARM-served kinds have no desired state here: skip.
    let mut adopting = vec![false; n];
    settle_before(sh, &obs, &mut outcome, &mut adopting);
    let children = plan_teardown(sh, &obs, &mut outcome);
    let edges = sh.plan.dag.edges();
    let mut waits: Vec<Vec<usize>> = (0..n).map(|i| dependents_closure(&edges, n, i)).collect();
    let (leftovers, extra) = leftover_nodes(n, &children);
    for (node, (w, holds)) in extra.into_iter().enumerate() {
        for d in holds {
            waits[d].push(n + node);
        }
        waits.push(w);
    }
    outcome.resize(n + leftovers.len(), None);
    let mut anchors = vec![false; n];
    for w in waits.iter().skip(n).flatten().filter(|&&w| w < n) {
        anchors[*w] = true;
    }
    let node_waits = waits.clone();
    let mut schedule = Schedule::new(waits, sh.cx.parallelism, Priority::ShortestFirst(sh.plan.dag.remaining_cost()));
    for (i, o) in outcome.iter().enumerate() {
        if let Some(o) = o {
            schedule.settle(i, destroy_fate(o));
        }
    }
    // Orphans go first (they may sit inside declared groups).
    let mut results: Vec<Row> = Vec::new();
    for (id, t) in sorted_orphans(sh, &obs.orphans) {
        results.push(delete_orphan(sh, id, &t).await);
    }
    let mut walk = DestroyWalk { sh, obs: &obs, outcome, with_parent: Vec::new(), adopting, leftovers, anchors };
    schedule.run(&mut walk, &sh.cx.cancel).await;
    if sh.cx.cancel.is_cancelled() {
        finish_leftovers(sh, &mut walk, &node_waits).await;
    }
    let DestroyWalk { mut outcome, with_parent, leftovers, .. } = walk;
    // Children that go with their parent: deleted only if the parent was.
    for (i, p) in with_parent {
        if !matches!(outcome[p], Some(Outcome::Deleted(_) | Outcome::Purged(_) | Outcome::AdoptedDeleted(_))) {
            outcome[i] = Some(Outcome::Kept(format!(
                "it goes with `{}`, which was not deleted",
                sh.plan.decls[p].logical.value
            )));
        }
        if let Some(o) = outcome[i].clone() {
            sh.reporter.event(Event::Finished { name: sh.plan.decls[i].logical.value.clone(), outcome: o });
        }
    }
    let mut order = sh.plan.dag.topo_order().unwrap_or_else(|| (0..n).collect());
    order.reverse();
    results.extend(rows(sh, order, &excluded, &outcome[..n]));
    // A leftover is counted with what it was made with; shown only when it did not go.
    for (k, (id, _)) in leftovers.iter().enumerate() {
        match &outcome[n + k] {
            Some(Outcome::Deleted(_)) => {}
            o => {
                let o = o.clone().unwrap_or(Outcome::Skipped("not reached".into()));
                let kind = plan::arm_type_of(id).map(|t| crate::kinds::kind_of_arm_type(&t)).unwrap_or_default();
                results.push((id.clone(), kind, o));
            }
        }
    }
    results
}

/// The leftovers of a destroy as nodes of the walk, numbered from `n` (the declarations
/// first): each child [`plan::teardown`] deletes itself after its parent, with what it waits
/// for (declarations, other leftovers) and the declarations that wait for it.
#[allow(clippy::type_complexity)]
fn leftover_nodes(
    n: usize,
    children: &[plan::Teardown],
) -> (Vec<(String, &'static str)>, Vec<(Vec<usize>, Vec<usize>)>) {
    let node_of: Vec<Option<usize>> = {
        let mut next = n;
        children
            .iter()
            .map(|t| {
                (t.goes() && matches!(t.child.fate, ImplicitFate::After { .. })).then(|| {
                    next += 1;
                    next - 1
                })
            })
            .collect()
    };
    let mut leftovers = Vec::new();
    let mut extra = Vec::new();
    for (t, node) in children.iter().zip(&node_of) {
        let (Some(_), ImplicitFate::After { api_version }) = (node, t.child.fate) else { continue };
        let waits = t
            .waits
            .iter()
            .filter_map(|w| match *w {
                plan::Gone::Decl(d) => Some(d),
                plan::Gone::Child(c) => node_of.get(c).copied().flatten(),
            })
            .collect();
        leftovers.push((t.child.id.clone(), api_version));
        extra.push((waits, t.holds_up.clone()));
    }
    (leftovers, extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependents_are_transitive() {
        // 0 <- 1 <- 2, 0 <- 3 (edges are (dependency, dependent)).
        let edges = [(0, 1), (1, 2), (0, 3)];
        let mut d = dependents_closure(&edges, 4, 0);
        d.sort_unstable();
        assert_eq!(d, vec![1, 2, 3]);
        assert!(dependents_closure(&edges, 4, 2).is_empty());
    }

    #[test]
    fn orphans_go_role_assignments_first_groups_last() {
        assert!(
            orphan_rank("Microsoft.Authorization/roleAssignments") < orphan_rank("Microsoft.Compute/virtualMachines")
        );
        assert!(orphan_rank("Microsoft.Storage/storageAccounts") < orphan_rank("Microsoft.Resources/resourceGroups"));
    }

    #[test]
    fn fates_differ_between_apply_and_destroy() {
        assert_eq!(apply_fate(&Outcome::Skipped("x".into())), Fate::Blocks);
        assert_eq!(destroy_fate(&Outcome::Skipped("x".into())), Fate::Done);
        assert_eq!(destroy_fate(&Outcome::Kept("x".into())), Fate::Blocks);
        assert_eq!(apply_fate(&Outcome::Unchanged), Fate::Done);
    }
}
