//! Provider `Microsoft.Compute`: virtual machines and their identities.

use serde_json::{Map, Value, json};

use crate::local::auth::Caller;
use crate::local::http::ArmError;
use crate::local::principals;
use crate::local::rbac::{self};
use crate::local::request::*;
use crate::local::shared::{Shared, guid};
use crate::local::store::{Op, Resource, State as CloudState};
use crate::local::table::VIRTUAL_MACHINES;

pub(crate) fn vm_nics(body: &Value) -> Vec<String> {
    body.pointer("/properties/networkProfile/networkInterfaces")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|n| n.get("id").and_then(Value::as_str).map(str::to_string)).collect())
        .unwrap_or_default()
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn prepare_vm(
    sh: &Shared,
    st: &CloudState,
    id: &str,
    existing: Option<&Resource>,
    body: &mut Value,
    extra: &mut Vec<Op>,
    caller: Option<&Caller>,
    now: u64,
) -> Result<(), ArmError> {
    // Network interfaces must exist and not belong to another VM; their references' enums in
    // Azure's case, a `null` `deleteOption` (what `az vm create` sends unasked) dropped.
    for r in body
        .pointer_mut("/properties/networkProfile/networkInterfaces")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Some(p) = r.get_mut("properties").and_then(Value::as_object_mut) {
            super::disk::canonical_enums(p);
            if p.is_empty()
                && let Some(o) = r.as_object_mut()
            {
                o.remove("properties");
            }
        }
    }
    let nics = vm_nics(body);
    for nic in &nics {
        let Some(n) = st.resources.get(&nic.to_ascii_lowercase()) else {
            return Err(invalid_reference(nic, id));
        };
        if let Some(other) = n.body.pointer("/properties/virtualMachine/id").and_then(Value::as_str)
            && !other.eq_ignore_ascii_case(id)
            && st.resources.contains_key(&other.to_ascii_lowercase())
        {
            return Err(ArmError::new(
                400,
                "NicInUse",
                format!("Network interface {nic} is in use by virtual machine {other}."),
            ));
        }
    }
    // Identities.
    let ident = body.get("identity").cloned().unwrap_or(json!({ "type": "None" }));
    let raw_type = ident.get("type").and_then(Value::as_str).unwrap_or("None");
    let mut system = false;
    let mut user = false;
    for part in raw_type.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.to_ascii_lowercase().as_str() {
            "systemassigned" => system = true,
            "userassigned" => user = true,
            "none" => {}
            _ => {
                return Err(ArmError::new(
                    400,
                    "InvalidIdentityType",
                    format!(
                        "The identity type '{raw_type}' is invalid. Allowed values: 'SystemAssigned', 'UserAssigned', 'SystemAssigned, UserAssigned', 'None'."
                    ),
                ));
            }
        }
    }
    let ua: Vec<String> = ident
        .get("userAssignedIdentities")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    if user && ua.is_empty() {
        return Err(ArmError::new(
            400,
            "InvalidIdentityValues",
            "Invalid value for the identities: 'userAssignedIdentities' is required when the type contains 'UserAssigned'.",
        ));
    }
    if !user && !ua.is_empty() {
        return Err(ArmError::new(
            400,
            "InvalidIdentityValues",
            "Invalid value for the identities: the type must contain 'UserAssigned' when 'userAssignedIdentities' is given.",
        ));
    }
    let old_ua: Vec<String> = existing
        .and_then(|r| r.body.pointer("/identity/userAssignedIdentities"))
        .and_then(Value::as_object)
        .map(|m| m.keys().map(|k| k.to_ascii_lowercase()).collect())
        .unwrap_or_default();
    let g = rbac::grants(st, now);
    let mut ua_out = Map::new();
    for uid in &ua {
        let Some(r) = st
            .resources
            .get(&uid.to_ascii_lowercase())
            .filter(|r| r.kind == "Microsoft.ManagedIdentity/userAssignedIdentities")
        else {
            return Err(ArmError::new(
                400,
                "FailedIdentityOperation",
                format!("Identity (principal) with resource id '{uid}' was not found."),
            ));
        };
        if !old_ua.contains(&uid.to_ascii_lowercase())
            && let Some(c) = caller
        {
            let action = "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action";
            if !rbac::allowed(&g, &c.object_id, &r.id, action, false) {
                return Err(ArmError::new(
                    403,
                    "LinkedAuthorizationFailed",
                    format!(
                        "The client '{}' with object id '{}' has permission to perform action 'Microsoft.Compute/virtualMachines/write' on scope '{id}'; however, it does not have permission to perform action(s) '{action}' on the linked scope(s) '{}' (respectively) or the linked scope(s) are invalid.",
                        c.client_id, c.object_id, r.id
                    ),
                ));
            }
        }
        ua_out.insert(r.id.clone(), json!({ "principalId": r.body.pointer("/properties/principalId"), "clientId": r.body.pointer("/properties/clientId") }));
    }
    let old_sys =
        existing.and_then(|r| r.body.pointer("/identity/principalId")).and_then(Value::as_str).map(str::to_string);
    let mut identity = json!({ "type": match (system, user) { (true, true) => "SystemAssigned, UserAssigned", (true, false) => "SystemAssigned", (false, true) => "UserAssigned", _ => "None" } });
    if system {
        let pid = principals::system_principal(st, old_sys.as_deref(), id, now, extra);
        identity["principalId"] = json!(pid);
        identity["tenantId"] = json!(sh.info.tenant_id);
    } else if let Some(p) = old_sys {
        extra.push(Op::DeletePrincipal { object_id: p });
    }
    if user {
        identity["userAssignedIdentities"] = Value::Object(ua_out);
    }
    body["identity"] = identity;
    // Secrets never come back, and server-filled fields.
    let vm_id = existing.and_then(|r| r.body.pointer("/properties/vmId").cloned()).unwrap_or_else(|| json!(guid()));
    let created = existing.and_then(|r| r.body.pointer("/properties/timeCreated").cloned()).unwrap_or_else(|| {
        json!(
            time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
        )
    });
    let mut windows = false;
    if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
        windows = p
            .get("storageProfile")
            .and_then(|s| s.pointer("/imageReference/publisher"))
            .and_then(Value::as_str)
            .is_some_and(|x| x.to_ascii_lowercase().contains("windows"))
            || p.get("storageProfile")
                .and_then(|s| s.pointer("/osDisk/osType"))
                .and_then(Value::as_str)
                .is_some_and(|x| x.eq_ignore_ascii_case("Windows"));
        if let Some(os) = p.get_mut("osProfile").and_then(Value::as_object_mut) {
            os.remove("adminPassword");
            os.remove("customData");
            os.entry("secrets").or_insert(json!([]));
            os.entry("allowExtensionOperations").or_insert(json!(true));
            let (key, defaults) = if windows {
                ("windowsConfiguration", json!({ "provisionVMAgent": true, "enableAutomaticUpdates": true }))
            } else {
                ("linuxConfiguration", json!({ "disablePasswordAuthentication": false, "provisionVMAgent": true }))
            };
            let cfg = os.entry(key).or_insert(json!({}));
            if let (Some(c), Some(d)) = (cfg.as_object_mut(), defaults.as_object()) {
                for (k, v) in d {
                    c.entry(k.clone()).or_insert(v.clone());
                }
            }
        }
        p.insert("vmId".into(), vm_id);
        p.insert("timeCreated".into(), created);
    }
    // Its extensions are listed in its body (`resources`), as Azure answers; a PUT keeps them.
    match existing.and_then(|r| r.body.get("resources")) {
        Some(r) => body["resources"] = r.clone(),
        None => {
            if let Some(o) = body.as_object_mut() {
                o.remove("resources");
            }
        }
    }
    // Its OS disk, made with it, and the data disks it attaches or detaches.
    extra.extend(super::disk::vm_disks(st, id, existing, body, windows, now)?);
    // NICs point back at their VM.
    for nic in nics {
        if let Some(mut n) = st.resources.get(&nic.to_ascii_lowercase()).cloned() {
            n.body["properties"]["virtualMachine"] = json!({ "id": id });
            n.etag += 1;
            extra.push(Op::PutResource { resource: n });
        }
    }
    Ok(())
}

/// A VM extension's PUT (`virtualMachines/{vm}/extensions/{name}`): its VM must exist; the VM's
/// body lists it under `resources` (recording `compute/TestVirtualMachineIdentityUpdate.json`:
/// the VM's GET shows the whole extension, its list entry only the id).
pub(crate) fn prepare_extension(
    st: &CloudState,
    id: &str,
    body: &mut Value,
    extra: &mut Vec<Op>,
) -> Result<(), ArmError> {
    let vm_id = id.rsplitn(3, '/').nth(2).unwrap_or_default();
    let Some(mut vm) = st.resources.get(&vm_id.to_ascii_lowercase()).filter(|r| r.kind == VIRTUAL_MACHINES).cloned()
    else {
        return Err(parent_not_found(vm_id));
    };
    if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
        p.insert("provisioningState".into(), json!("Succeeded"));
    }
    extension_listed(&mut vm.body, id, Some(body));
    vm.etag += 1;
    extra.push(Op::PutResource { resource: vm });
    Ok(())
}

/// A resource as a list shows it: a VM's extensions by id only (the recording's VM list).
pub(crate) fn listed(mut body: Value) -> Value {
    if body.get("type").and_then(Value::as_str) != Some(VIRTUAL_MACHINES) {
        return body;
    }
    if let Some(list) = body.get_mut("resources").and_then(Value::as_array_mut) {
        for e in list.iter_mut() {
            *e = json!({ "id": e.get("id") });
        }
    }
    body
}

/// The VM whose extension `id` is deleted, without it in its `resources`.
pub(crate) fn extension_deleted(st: &CloudState, id: &str) -> Vec<Op> {
    let vm_id = id.rsplitn(3, '/').nth(2).unwrap_or_default();
    let Some(mut vm) = st.resources.get(&vm_id.to_ascii_lowercase()).cloned() else { return Vec::new() };
    extension_listed(&mut vm.body, id, None);
    vm.etag += 1;
    vec![Op::PutResource { resource: vm }]
}

/// Put (or with `None` remove) extension `id` in a VM body's `resources`.
fn extension_listed(vm: &mut Value, id: &str, ext: Option<&Value>) {
    let mut list: Vec<Value> = vm.get("resources").and_then(Value::as_array).cloned().unwrap_or_default();
    list.retain(|e| !e.get("id").and_then(Value::as_str).is_some_and(|x| x.eq_ignore_ascii_case(id)));
    if let Some(e) = ext {
        list.push(e.clone());
    }
    match vm.as_object_mut() {
        Some(o) if list.is_empty() => {
            o.remove("resources");
        }
        Some(o) => {
            o.insert("resources".into(), Value::Array(list));
        }
        None => {}
    }
}

/// How long a Run Command script may run before it is killed (Azure allows 90 minutes; the
/// local cloud's scripts are verify checks of a few requests).
pub(crate) const RUN_COMMAND_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Run Command keeps the last 4,096 bytes of each stream, as Azure does.
const RUN_COMMAND_OUTPUT: usize = 4096;

/// `POST {vm}/runCommand` (`VirtualMachines_RunCommand`): only when the local cloud was
/// started with `--allow-run-command`, only `RunShellScript` on a Linux-image VM. The script
/// runs with `sh` on this host, in a cleared environment holding what `idlab local exec`
/// gives a VM (its identity endpoint, the CA bundle), under [`RUN_COMMAND_LIMIT`], as a
/// long-running operation: 202, then the result at its `Location`.
pub(crate) fn run_command(req: &Req<'_>, vm_id: &str, body: &Value) -> Result<axum::response::Response, ArmError> {
    let sh = req.sh;
    if !sh.limits.run_command {
        return Err(ArmError::new(
            409,
            "OperationNotAllowed",
            "Run Command is off in this local cloud: its scripts run on the host as the local cloud's user. Start it with `idlab local serve --allow-run-command` to allow them.",
        ));
    }
    let (vm, endpoint) = {
        let st = sh.store();
        let vm = st.state.resources.get(&vm_id.to_ascii_lowercase()).filter(|r| r.kind == VIRTUAL_MACHINES).cloned();
        (vm, st.state.imds.get(&vm_id.to_ascii_lowercase()).cloned())
    };
    let Some(vm) = vm else {
        let id = crate::arm::id::ResourceId::parse(vm_id).map_err(|_| ArmError::new(404, "NotFound", "Not found."))?;
        return Err(not_found(&id));
    };
    let command = body.get("commandId").and_then(Value::as_str).unwrap_or_default();
    let windows = vm
        .body
        .pointer("/properties/storageProfile/osDisk/osType")
        .and_then(Value::as_str)
        .is_some_and(|o| o.eq_ignore_ascii_case("Windows"));
    if windows || command.eq_ignore_ascii_case("RunPowerShellScript") {
        return Err(ArmError::new(
            409,
            "OperationNotAllowed",
            format!(
                "Run Command on a Windows-image VM (RunPowerShellScript) is not supported in the local cloud: it runs scripts with sh on the host. VM: {vm_id}."
            ),
        ));
    }
    if !command.eq_ignore_ascii_case("RunShellScript") {
        return Err(ArmError::new(
            400,
            "InvalidParameter",
            format!("The local cloud runs only the commandId 'RunShellScript' with a 'script'; got '{command}'."),
        ));
    }
    let Some(lines) = body.get("script").and_then(Value::as_array) else {
        return Err(ArmError::new(400, "InvalidParameter", "Required parameter 'script' is missing (null)."));
    };
    let script: Vec<&str> = lines.iter().filter_map(Value::as_str).collect();
    let script = script.join("\n");
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())),
        ("HOME".into(), std::env::temp_dir().display().to_string()),
        ("IDLAB_ARM_URL".into(), sh.info.arm_url.clone()),
        ("IDLAB_VM_ID".into(), vm.id.clone()),
        ("AZURE_SUBSCRIPTION_ID".into(), sh.info.subscription_id.clone()),
        ("AZURE_TENANT_ID".into(), sh.info.tenant_id.clone()),
    ];
    for k in ["REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE"] {
        env.push((k.into(), sh.info.ca_file.display().to_string()));
    }
    if let Some(ep) = endpoint {
        let base = format!("http://127.0.0.1:{}", ep.port);
        env.push(("IDENTITY_ENDPOINT".into(), format!("{base}/msi/token")));
        env.push(("IDENTITY_HEADER".into(), ep.header_secret.clone()));
        env.push(("IDLAB_IMDS_ENDPOINT".into(), base.clone()));
        env.push(("AZURE_POD_IDENTITY_AUTHORITY_HOST".into(), base));
    }
    let op = crate::local::lro::start_operation(sh, &VIRTUAL_MACHINES.to_ascii_lowercase(), None);
    if let Some(o) = sh.ops.lock().unwrap_or_else(|p| p.into_inner()).get_mut(&op) {
        o.done_ms = u64::MAX;
    }
    let shared = sh.clone();
    let op_id = op.clone();
    let spawned = std::thread::Builder::new().name("run-command".into()).spawn(move || {
        let outcome = run_script(&script, &env, RUN_COMMAND_LIMIT);
        let mut ops = shared.ops.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(o) = ops.get_mut(&op_id) {
            o.done_ms = crate::local::shared::now_ms();
            match outcome {
                Ok(result) => o.result = Some(result),
                Err((code, message)) => o.failed = Some((code, message)),
            }
        }
    });
    if let Err(e) = spawned {
        return Err(ArmError::new(500, "InternalServerError", format!("cannot start the script: {e}")));
    }
    Ok(crate::local::http::empty(202, &crate::local::lro::lro_headers(req, &op, false)))
}

/// Run a script with `sh -c` in `env` only; the Run Command result (`value[0]`: the
/// provisioning state and the `[stdout]`/`[stderr]` message), or a failure (code, message).
fn run_script(script: &str, env: &[(String, String)], limit: std::time::Duration) -> Result<Value, (String, String)> {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let failed = |e: std::io::Error| ("VMExtensionProvisioningError".to_string(), format!("cannot run sh: {e}"));
    let mut cmd = Command::new("sh");
    // Its own process group, so that a script over its limit is stopped with whatever it
    // started.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd
        .arg("-c")
        .arg(script)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(failed)?;
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = reader(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = reader(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let start = std::time::Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() >= limit => {
                #[cfg(unix)]
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                let _ = child.kill();
                let _ = child.wait();
                return Err((
                    "VMExtensionHandlerTimeout".into(),
                    format!("The script did not finish within {} seconds and was stopped.", limit.as_secs()),
                ));
            }
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(20)),
            Err(e) => return Err(failed(e)),
        }
    };
    let tail = |b: Vec<u8>| {
        let text = String::from_utf8_lossy(&b).into_owned();
        let mut cut = text.len().saturating_sub(RUN_COMMAND_OUTPUT);
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        text[cut..].to_string()
    };
    let (stdout, stderr) = (tail(out.join().unwrap_or_default()), tail(err.join().unwrap_or_default()));
    let head = match status.code() {
        Some(0) => "Enable succeeded: ".to_string(),
        Some(c) => format!("Enable failed: failed to execute command: command terminated with exit status={c}"),
        None => "Enable failed: failed to execute command: command terminated by a signal".to_string(),
    };
    Ok(json!({ "value": [{
        "code": "ProvisioningState/succeeded",
        "level": "Info",
        "displayStatus": "Provisioning succeeded",
        "message": format!("{head}\n[stdout]\n{stdout}\n[stderr]\n{stderr}\n"),
    }] }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path() -> Vec<(String, String)> {
        vec![("PATH".into(), std::env::var("PATH").unwrap_or_default())]
    }

    #[test]
    fn a_script_answers_azure_s_result_with_both_streams_and_its_exit_status() {
        let r = run_script("echo hi; echo oops >&2; exit 3", &path(), RUN_COMMAND_LIMIT).expect("ran");
        let m = r.pointer("/value/0/message").and_then(Value::as_str).unwrap_or_default();
        assert_eq!(
            m,
            "Enable failed: failed to execute command: command terminated with exit status=3\n[stdout]\nhi\n\n[stderr]\noops\n\n"
        );
        assert_eq!(r.pointer("/value/0/code"), Some(&json!("ProvisioningState/succeeded")));
        let ok = run_script("printf '%s' \"${IDLAB_VM_ID:-unset}\"", &path(), RUN_COMMAND_LIMIT).expect("ran");
        let m = ok.pointer("/value/0/message").and_then(Value::as_str).unwrap_or_default();
        assert_eq!(m, "Enable succeeded: \n[stdout]\nunset\n[stderr]\n\n");
    }

    #[test]
    fn a_script_over_its_limit_is_stopped_and_fails_the_operation() {
        // `sh` waits for a child of its own: both are stopped.
        let r = run_script("sleep 30; echo after", &path(), std::time::Duration::from_millis(50));
        let (code, message) = r.expect_err("stopped");
        assert_eq!(code, "VMExtensionHandlerTimeout");
        assert!(message.contains("did not finish"), "{message}");
    }

    #[test]
    fn only_the_last_4096_bytes_of_a_stream_are_kept() {
        let r = run_script(
            "i=0; while [ $i -lt 1000 ]; do printf 'abcdefghij'; i=$((i+1)); done; printf END",
            &path(),
            RUN_COMMAND_LIMIT,
        )
        .expect("ran");
        let m = r.pointer("/value/0/message").and_then(Value::as_str).unwrap_or_default();
        let out = m.split("[stdout]\n").nth(1).and_then(|s| s.split("\n[stderr]").next()).unwrap_or_default();
        assert_eq!(out.len(), RUN_COMMAND_OUTPUT);
        assert!(out.ends_with("hijEND"), "{out}");
    }
}
