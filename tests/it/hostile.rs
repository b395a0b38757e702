//! The hostile-plan catalogue: every plan under `tests/fixtures/hostile/`, and the cases that
//! cannot be committed (a 17 MiB plan, `/dev/zero`, a FIFO that never ends, symbolic links
//! out of the plan's directory, bytes that are not UTF-8), each run through the real
//! `idlab validate` in text and JSON, each against a snapshot of both under
//! `snapshots/hostile/`. Across all of them: no panic, and the canary secret planted in many
//! of them never appears in any output.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Run, root};

/// The secret planted in the catalogue: inline, in `--var`, in a var file, in the
/// environment and in a secret file.
const CANARY: &str = "Zq8-canary-7Hx2";

/// Codes that belong to a file or to the command line, not to a place in the file.
const DETACHED: &[&str] = &["E036", "E037", "E046"];

/// Run `idlab ARGS` in `dir` with a clean environment plus `env`.
fn idlab_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_idlab"));
    cmd.args(args).current_dir(dir).env_clear().env("HOME", std::env::temp_dir()).env("COLUMNS", "100");
    cmd.env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the idlab binary runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Validate `plan` (with `extra` flags) in text and in JSON; check what holds for every
/// hostile plan; return the codes the JSON reported and the snapshot text.
fn validate(dir: &Path, plan: &str, extra: &[&str], env: &[(&str, &str)]) -> (i32, Vec<String>, String) {
    let mut args = vec!["validate"];
    args.extend_from_slice(extra);
    args.push(plan);
    let text = idlab_in(dir, &args, env);
    args.splice(1..1, ["--format", "json"]);
    let json = idlab_in(dir, &args, env);
    for run in [&text, &json] {
        assert_ne!(run.code, 101, "{plan} panicked: {}", run.render());
        assert!(!run.stderr.contains("panicked"), "{plan}: {}", run.render());
        assert!(
            !run.stdout.contains(CANARY) && !run.stderr.contains(CANARY),
            "{plan} shows the secret: {}",
            run.render()
        );
        // NO_COLOR is set: an escape character could only come from the plan, to drive the terminal.
        assert!(!run.stdout.contains('\u{1b}') && !run.stderr.contains('\u{1b}'), "{plan}: {}", run.render());
    }
    assert_eq!(text.code, json.code, "{plan}: text and JSON disagree");
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("validate --format json prints JSON");
    let mut codes = Vec::new();
    for d in doc["files"][0]["diagnostics"].as_array().expect("diagnostics") {
        let code = d["code"].as_str().unwrap_or_default().to_string();
        let line = d["start"]["line"].as_u64().unwrap_or(0);
        let command_line = d["message"].as_str().is_some_and(|m| m.starts_with("--var"));
        assert!(line >= 1 || DETACHED.contains(&code.as_str()) || command_line, "{plan}: {code} has no position: {d}");
        codes.push(code);
    }
    let snap = format!("{}--- json\n{}", text.render(), json.stdout);
    (text.code, codes, snap)
}

fn snapshot(name: &str, body: &str) {
    insta::with_settings!({ snapshot_path => "snapshots/hostile", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!(name, body);
    });
}

/// Every `tests/fixtures/hostile/*.yaml`, sorted, relative to the root.
fn catalogue() -> Vec<String> {
    let dir = root().join("tests/fixtures/hostile");
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("tests/fixtures/hostile")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .map(|n| format!("tests/fixtures/hostile/{n}"))
        .collect();
    v.sort();
    v
}

/// What each family of committed plans must report.
fn expected_code(name: &str) -> Option<&'static str> {
    const FAMILIES: &[(&str, &str)] = &[
        ("traversal-blob-source", "E049"),
        ("traversal-secret-file", "E049"),
        ("traversal-ssh-key-file", "E049"),
        ("traversal-blob-name", "E050"),
        ("traversal-data-lake-path", "E050"),
        ("multi-document", "E047"),
        ("inline-secret-in-second-document", "E047"),
        ("alias-bomb", "E048"),
        ("deep-nesting", "E048"),
        ("duplicate-keys", "E002"),
        ("dependency-cycle", "E015"),
        ("unknown-kinds", "E007"),
        ("name-resource-group", "E020"),
        ("name-identity", "E021"),
        ("name-storage-account", "E023"),
        ("name-key-vault-secret", "E029"),
        ("name-key-vault", "E024"),
        ("name-virtual-machine", "E025"),
        ("name-sql-server", "E026"),
        ("name-data-lake-store", "E027"),
        ("name-blob-container", "E028"),
        ("inline-secret", "E0"),
    ];
    FAMILIES.iter().find(|(prefix, _)| name.starts_with(prefix)).map(|(_, c)| *c)
}

#[test]
fn every_committed_hostile_plan_is_refused_with_its_snapshot() {
    let plans = catalogue();
    assert!(plans.len() >= 40, "{}", plans.len());
    for plan in &plans {
        let name = plan.trim_start_matches("tests/fixtures/hostile/").trim_end_matches(".yaml");
        let (code, codes, snap) = validate(&root(), plan, &[], &[]);
        assert_eq!(code, 1, "{plan} is not refused: {snap}");
        assert!(!codes.is_empty(), "{plan}: {snap}");
        if let Some(want) = expected_code(name) {
            assert!(codes.iter().any(|c| c.starts_with(want)), "{plan}: want {want}, got {codes:?}");
        }
        if name.starts_with("inline-secret") {
            assert!(snap.contains("********"), "{plan}: the secret is not masked in the snippet: {snap}");
        }
        snapshot(name, &snap);
    }
}

/// One generated case: its name, the plan argument, extra flags and environment, the exit
/// code and a code that must (or, with `!`, must not) be reported.
struct Case {
    name: &'static str,
    plan: String,
    flags: Vec<String>,
    env: Vec<(&'static str, String)>,
    exit: i32,
    code: &'static str,
}

fn case(name: &'static str, plan: &str, exit: i32, code: &'static str) -> Case {
    Case { name, plan: plan.to_string(), flags: Vec::new(), env: Vec::new(), exit, code }
}

const PLAN: &str =
    "name: generated\nlocation: eastus\nresources:\n  rg:\n    type: resource_group\n    name: generated-rg\n";

fn blob_plan(source: &str) -> String {
    format!(
        "{PLAN}  sa:\n    type: storage_account\n    name: idlabgenerated\n    resource_group: ${{rg}}\n  c:\n    type: blob_container\n    name: docs\n    account: ${{sa}}\n  b:\n    type: blob\n    name: a.txt\n    container: ${{c}}\n    source: {source}\n"
    )
}

fn vm_plan(password: &str) -> String {
    format!(
        "{PLAN}  vm:\n    type: virtual_machine\n    name: vm1\n    resource_group: ${{rg}}\n    image: Ubuntu2204\n    admin:\n      username: azureuser\n      password: {password}\n    identity:\n      system_assigned: true\n"
    )
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> String {
    std::fs::write(dir.join(name), bytes).expect("write");
    name.to_string()
}

#[cfg(unix)]
/// A FIFO whose writer streams bytes until the reader goes away, for two readers (the text
/// and the JSON run).
fn endless_fifo(dir: &Path) -> String {
    let path = dir.join("endless.yaml");
    let made = Command::new("mkfifo").arg(&path).status().expect("mkfifo runs");
    assert!(made.success());
    std::thread::spawn(move || {
        for _ in 0..2 {
            let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&path) else { return };
            let chunk = format!("# {}\n", "x".repeat(4094)).into_bytes();
            while f.write_all(&chunk).is_ok() {}
        }
    });
    "endless.yaml".to_string()
}

/// The generated cases, built in `dir` (the plan's directory and the working directory).
fn generated(dir: &Path) -> Vec<Case> {
    let mut cases = Vec::new();
    let comments =
        |mib: usize| "# padding padding padding padding padding padding padding padding\n".repeat(mib * 16384);

    let p = write(dir, "size-bomb.yaml", format!("{PLAN}{}", comments(17)));
    cases.push(case("size-bomb-17mib", &p, 1, "E046"));
    let mut raised = case("size-limit-raised", &p, 0, "!E046");
    raised.flags = vec!["--max-plan-size".into(), "32MiB".into()];
    cases.push(raised);
    let p = write(dir, "four-kib.yaml", format!("{PLAN}{}", "# pad\n".repeat(700)));
    let mut lowered = case("size-limit-lowered", &p, 1, "E046");
    lowered.flags = vec!["--max-plan-size".into(), "1KiB".into()];
    cases.push(lowered);
    #[cfg(unix)]
    {
        cases.push(case("dev-zero", "/dev/zero", 1, "E046"));
        let fifo = endless_fifo(dir);
        let mut f = case("fifo-endless", &fifo, 1, "E046");
        f.flags = vec!["--max-plan-size".into(), "256KiB".into()];
        cases.push(f);
    }
    std::fs::create_dir_all(dir.join("a-directory.yaml")).expect("mkdir");
    cases.push(case("directory-as-plan", "a-directory.yaml", 1, "E046"));
    cases.push(case("missing-file", "nowhere.yaml", 1, "E037"));
    let p = write(dir, "evil\u{1b}[2J\u{1b}]0;owned\u{7}.yaml", PLAN.replace("generated-rg", "\"\\e[31mred\""));
    cases.push(case("escape-sequences-in-file-name-and-plan", &p, 1, "E020"));
    let p = write(dir, "many-values.yaml", format!("{PLAN}list:\n{}", "  - 1\n".repeat(300_000)));
    cases.push(case("many-values-under-the-size-cap", &p, 1, "E048"));

    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("/etc", dir.join("etc-link")).expect("symlink");
        let p = write(dir, "symlink-out.yaml", blob_plan("etc-link/passwd"));
        cases.push(case("symlink-out", &p, 1, "E049"));
        let mut allowed = case("symlink-out-allowed", &p, 0, "!E049");
        allowed.flags = vec!["--allow-files-outside".into(), "/etc".into()];
        cases.push(allowed);
        std::fs::create_dir_all(dir.join("real")).expect("mkdir");
        write(dir, "real/hello.txt", "hello");
        std::os::unix::fs::symlink("real", dir.join("files")).expect("symlink");
        let p = write(dir, "symlink-inside.yaml", blob_plan("files/hello.txt"));
        cases.push(case("symlink-inside", &p, 0, "!E049"));
        let p = write(dir, "symlinked-plan-target.yaml", blob_plan("../../../../../../../etc/hostname"));
        std::os::unix::fs::symlink(dir.join(&p), dir.join("symlinked-plan.yaml")).expect("symlink");
        cases.push(case("symlinked-plan-climbing-to-the-root", "symlinked-plan.yaml", 1, "E049"));
    }
    let p = write(dir, "absolute-inside.yaml", blob_plan(&dir.join("real/hello.txt").display().to_string()));
    cases.push(case("absolute-path-inside", &p, 0, "!E049"));

    let p = write(dir, "invalid-utf8.yaml", [PLAN.as_bytes(), b"  x:\n    type: \xff\xfe\n"].concat());
    cases.push(case("invalid-utf8", &p, 1, "E001"));
    let p = write(dir, "nul-bytes.yaml", [PLAN.as_bytes(), b"  x:\n    type: a\0b\n"].concat());
    cases.push(case("nul-bytes", &p, 1, "E0"));
    let p = write(dir, "bom.yaml", [b"\xEF\xBB\xBF".as_slice(), PLAN.as_bytes()].concat());
    cases.push(case("byte-order-mark", &p, 0, "!E001"));
    let p = write(dir, "utf16.yaml", PLAN.encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<u8>>());
    cases.push(case("utf16", &p, 1, "E001"));

    let p = write(dir, "var-plan.yaml", format!("variables:\n  pw: x\n{}", vm_plan("${var.pw}")));
    let mut v = case("inline-secret-from-var", &p, 1, "E005");
    v.flags = vec!["--var".into(), format!("pw={CANARY}")];
    cases.push(v);
    let vf = write(dir, "secret-vars.yaml", format!("pw: {CANARY}\n"));
    let mut v = case("inline-secret-from-var-file", &p, 1, "E005");
    v.flags = vec!["--var-file".into(), vf];
    cases.push(v);
    let mut v = case("var-file-dev-zero", &p, 1, "E046");
    v.flags = vec!["--var-file".into(), "/dev/zero".into()];
    cases.push(v);
    let vf = write(dir, "two-docs-vars.yaml", format!("pw: a\n---\npw: {CANARY}\n"));
    let mut v = case("var-file-multi-document", &p, 1, "E047");
    v.flags = vec!["--var-file".into(), vf];
    cases.push(v);
    let vf = write(dir, "bad-vars.yaml", format!("pw: [\"{CANARY}\"\n"));
    let mut v = case("var-file-syntax-error-with-secret", &p, 1, "E036");
    v.flags = vec!["--var-file".into(), vf];
    cases.push(v);

    let p = write(dir, "env-secret.yaml", vm_plan("{ env: IDLAB_HOSTILE_SECRET }"));
    let mut e = case("secret-from-environment", &p, 0, "!E019");
    e.flags = vec!["--strict".into()];
    e.env = vec![("IDLAB_HOSTILE_SECRET", CANARY.to_string())];
    cases.push(e);
    write(dir, "secret.txt", CANARY);
    let p = write(dir, "file-secret.yaml", vm_plan("{ file: secret.txt }"));
    cases.push(case("secret-from-file", &p, 0, "!E019"));
    let p = write(dir, "file-secret-outside.yaml", vm_plan("{ file: /var/lib/idlab-hostile/password.txt }"));
    cases.push(case("secret-file-absolute-outside", &p, 1, "E049"));
    cases
}

#[test]
fn every_generated_hostile_plan_is_handled_with_its_snapshot() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().canonicalize().expect("canonical temp dir");
    let cases = generated(&dir);
    assert!(cases.len() >= 20 && cases.len() + catalogue().len() >= 80, "{}", cases.len());
    let shown_tmp = dir.display().to_string();
    for c in &cases {
        let flags: Vec<&str> = c.flags.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = c.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (code, codes, snap) = validate(&dir, &c.plan, &flags, &env);
        assert_eq!(code, c.exit, "{}: {snap}", c.name);
        match c.code.strip_prefix('!') {
            Some(not) => assert!(!codes.iter().any(|x| x == not), "{}: {codes:?}", c.name),
            None => assert!(codes.iter().any(|x| x.starts_with(c.code)), "{}: want {}, got {codes:?}", c.name, c.code),
        }
        let parent = dir.parent().map(|p| p.display().to_string()).unwrap_or_default();
        let snap = snap.replace(&shown_tmp, "[TMP]").replace(&parent, "[TMP-PARENT]");
        snapshot(&format!("generated-{}", c.name), &snap);
    }
}

#[cfg(unix)]
#[test]
fn a_plan_file_may_be_read_from_a_pipe() {
    // Process substitution (`validate <(cat plan)`) hands over a pipe: it is read, capped.
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir: PathBuf = tmp.path().to_path_buf();
    let path = dir.join("pipe.yaml");
    assert!(Command::new("mkfifo").arg(&path).status().expect("mkfifo").success());
    let writer = path.clone();
    let t = std::thread::spawn(move || {
        if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(writer) {
            let _ = f.write_all(PLAN.as_bytes());
        }
    });
    let run = idlab_in(&dir, &["validate", "pipe.yaml"], &[]);
    assert_eq!(run.code, 0, "{}", run.render());
    assert!(run.stdout.contains("pipe.yaml: ok — plan `generated`, 1 resources"), "{}", run.render());
    t.join().expect("writer");
}
