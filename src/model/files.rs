//! Confinement of the files a plan names (blob `source`, `{ file: PATH }`,
//! `ssh_public_key_file`): each must resolve, after `..` and symlinks, inside the plan file's
//! directory or a directory the user allowed with `--allow-files-outside`. A plan that comes
//! from a pull request must not be able to upload `/etc/passwd` from a CI runner.
//!
//! The one part of `model` that looks at the file system: it canonicalizes paths, and reads
//! nothing.

use std::path::{Component, Path, PathBuf};

/// Where a plan's file path leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confined {
    /// Inside the plan's directory or an allowed one (the file may still be missing).
    Inside,
    /// Outside every allowed directory: where it leads, as resolved.
    Outside(PathBuf),
}

/// Resolve `path` (relative to `base`) through `..` and symlinks, and check it stays inside
/// `base` or one of `allowed`. A path that does not exist is resolved as far as it exists,
/// the rest lexically.
pub fn confine(base: &Path, allowed: &[PathBuf], path: &str) -> Confined {
    let target = resolved(&base.join(path));
    let inside = |dir: &Path| target.starts_with(resolved(dir));
    if inside(base) || allowed.iter().any(|d| inside(d)) { Confined::Inside } else { Confined::Outside(target) }
}

/// A path with a reference in it (`${...}`) is only known at apply: its literal text may
/// still not be absolute or climb with `..`.
pub fn template_escapes(path: &str) -> bool {
    Path::new(path).is_absolute() || path.split(['/', '\\']).any(|s| s == "..")
}

/// The canonical form of the longest existing ancestor, with the rest appended lexically.
fn resolved(p: &Path) -> PathBuf {
    let p = if p.as_os_str().is_empty() { Path::new(".") } else { p };
    let absolute = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_path_buf())
    };
    let mut rest: Vec<Component<'_>> = Vec::new();
    let mut cur: &Path = &absolute;
    loop {
        if let Ok(canon) = cur.canonicalize() {
            let mut out = canon;
            for c in rest.iter().rev() {
                match c {
                    Component::ParentDir => {
                        out.pop();
                    }
                    Component::CurDir => {}
                    other => out.push(other.as_os_str()),
                }
            }
            return out;
        }
        match (cur.parent(), cur.components().next_back()) {
            (Some(parent), Some(last)) => {
                rest.push(last);
                cur = parent;
            }
            _ => return lexical(&absolute),
        }
    }
}

/// `..` and `.` removed without looking at the file system.
fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_or_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let base = dir.path().join("plan");
        std::fs::create_dir_all(base.join("files")).expect("mkdir");
        std::fs::write(base.join("files/a.txt"), "a").expect("write");
        assert_eq!(confine(&base, &[], "files/a.txt"), Confined::Inside);
        assert_eq!(confine(&base, &[], "files/../files/a.txt"), Confined::Inside);
        assert_eq!(confine(&base, &[], "missing/new.txt"), Confined::Inside);
        assert!(matches!(confine(&base, &[], "../x.txt"), Confined::Outside(_)));
        assert!(matches!(confine(&base, &[], "/etc/passwd"), Confined::Outside(_)));
        assert!(matches!(confine(&base, &[], "missing/../../x"), Confined::Outside(_)));
        assert_eq!(confine(&base, &[dir.path().to_path_buf()], "../x.txt"), Confined::Inside);
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc", base.join("link")).expect("symlink");
            assert!(matches!(confine(&base, &[], "link/passwd"), Confined::Outside(_)));
        }
        assert!(template_escapes("${rg.name}/../x") && template_escapes("/abs/${x}"));
        assert!(!template_escapes("files/${x}.txt"));
    }
}
