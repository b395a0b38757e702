//! Secret values at the moment a request needs them: from the environment, a file next to
//! the plan, or generated (strong, created once at create time, never shown).

use std::path::Path;

use crate::model::{Secret, Sensitive};

/// Why a secret is unavailable (names the source, never the value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretError(pub String);

/// A generated password: `len` characters with upper, lower, digit and symbol, as Azure's
/// complexity rules ask.
pub fn generate(len: usize) -> String {
    use rand::RngExt;
    const SETS: [&[u8]; 4] = [b"ABCDEFGHJKLMNPQRSTUVWXYZ", b"abcdefghijkmnopqrstuvwxyz", b"23456789", b"!@#%^*-_=+"];
    let mut rng = rand::rng();
    let len = len.max(12);
    let mut out: Vec<u8> = SETS.iter().map(|s| s[rng.random_range(0..s.len())]).collect();
    let all: Vec<u8> = SETS.concat();
    while out.len() < len {
        out.push(all[rng.random_range(0..all.len())]);
    }
    for i in (1..out.len()).rev() {
        let j = rng.random_range(0..=i);
        out.swap(i, j);
    }
    String::from_utf8(out).unwrap_or_default()
}

/// Resolve a secret for a request.
///
/// # Errors
/// An unset variable or unreadable file, named in the message.
pub fn resolve(s: &Secret, base_dir: &Path) -> Result<Sensitive<String>, SecretError> {
    match s {
        Secret::Env(name) => std::env::var(&name.value)
            .ok()
            .filter(|v| !v.is_empty())
            .map(Sensitive::new)
            .ok_or_else(|| SecretError(format!("environment variable `{}` is not set", name.value))),
        Secret::File(path) => std::fs::read_to_string(base_dir.join(&path.value))
            .map(|v| Sensitive::new(v.trim_end_matches(['\r', '\n']).to_string()))
            .map_err(|e| SecretError(format!("cannot read secret file `{}`: {e}", path.value))),
        Secret::Generate(n) => Ok(Sensitive::new(generate(n.value as usize))),
    }
}

/// Whether two secret values are equal, in time that does not depend on where they differ.
pub fn same(a: &Sensitive<String>, b: &Sensitive<String>) -> bool {
    let (a, b) = (a.expose().as_bytes(), b.expose().as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_have_every_class() {
        for _ in 0..50 {
            let p = generate(16);
            assert_eq!(p.len(), 16);
            assert!(p.chars().any(|c| c.is_ascii_uppercase()));
            assert!(p.chars().any(|c| c.is_ascii_lowercase()));
            assert!(p.chars().any(|c| c.is_ascii_digit()));
            assert!(p.chars().any(|c| !c.is_ascii_alphanumeric()));
        }
        assert_ne!(generate(24), generate(24));
    }
}
