//! Reading plan and variable files under a size cap: the size is checked from the file's
//! metadata first, and the read itself stops after `cap + 1` bytes, so `/dev/zero`, a FIFO
//! or a file that grows while it is read never holds more than the cap in memory.

use std::io::Read;
use std::path::Path;

use crate::model::{Code, Diag};

/// The default cap on a plan or variable file: 16 MiB.
pub const DEFAULT_MAX_PLAN_SIZE: u64 = 16 * 1024 * 1024;

/// Why a file could not be read.
#[derive(Debug)]
pub(super) enum ReadError {
    /// Over the cap (`size` when the metadata told it; else the read ran past the cap).
    TooLarge {
        size: Option<u64>,
    },
    /// A directory (or another thing that holds no bytes to read as a plan).
    NotAFile(&'static str),
    Io(std::io::Error),
}

/// Read at most `cap` bytes of `path`; more is [`ReadError::TooLarge`].
pub(super) fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, ReadError> {
    let meta = std::fs::metadata(path).map_err(ReadError::Io)?;
    if meta.is_dir() {
        return Err(ReadError::NotAFile("a directory"));
    }
    if meta.is_file() && meta.len() > cap {
        return Err(ReadError::TooLarge { size: Some(meta.len()) });
    }
    let file = std::fs::File::open(path).map_err(ReadError::Io)?;
    let mut bytes = Vec::new();
    file.take(cap.saturating_add(1)).read_to_end(&mut bytes).map_err(ReadError::Io)?;
    if bytes.len() as u64 > cap {
        return Err(ReadError::TooLarge { size: None });
    }
    Ok(bytes)
}

/// The diagnostic for a file that could not be read; `what` names it (`plan file X`,
/// `--var-file X`).
pub(super) fn read_diag(what: &str, err: &ReadError, cap: u64) -> Diag {
    match err {
        ReadError::TooLarge { size } => {
            let holds = size.map_or_else(|| "more than".to_string(), |s| format!("{} bytes, over", group(s)));
            Diag::detached(Code::FileTooLarge, format!("{what} holds {holds} the {} limit ({} bytes)", human(cap), group(cap)))
            .help("a plan is a small text file; raise the limit with --max-plan-size SIZE (e.g. 64MiB) if it must be larger")
        }
        ReadError::NotAFile(kind) => {
            Diag::detached(Code::FileTooLarge, format!("{what} is {kind}, not a file")).help("name a YAML plan file")
        }
        ReadError::Io(e) => Diag::detached(Code::FileNotFound, format!("cannot read {what}: {e}")),
    }
}

/// Parse a size: bytes, or a number with `KiB`, `MiB`, `GiB` (also `K`, `M`, `G`, `KB`, `MB`,
/// `GB`, all powers of 1024).
///
/// ```
/// use idlab::resolve::parse_size;
/// assert_eq!(parse_size("16MiB"), Ok(16 * 1024 * 1024));
/// assert_eq!(parse_size("1000"), Ok(1000));
/// assert!(parse_size("lots").is_err());
/// ```
///
/// # Errors
/// A message when the text is not a size.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("`{text}` is not a size (e.g. 1048576 or 16MiB)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(format!("`{text}`: unknown unit `{}` (use KiB, MiB or GiB)", unit.trim())),
    };
    n.checked_mul(1u64 << shift).ok_or_else(|| format!("`{text}` is too large"))
}

/// `16 MiB`, `1.5 KiB`, `100 bytes`.
fn human(n: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if n >= size {
            return if n.is_multiple_of(size) {
                format!("{} {unit}", n / size)
            } else {
                format!("{:.1} {unit}", n as f64 / size as f64)
            };
        }
    }
    format!("{n} bytes")
}

/// `16,777,216`.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1KiB"), Ok(1024));
        assert_eq!(parse_size("2 M"), Ok(2 << 20));
        assert!(parse_size("1TiB").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
        assert_eq!(human(16 << 20), "16 MiB");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(group(16_777_216), "16,777,216");
    }

    #[test]
    fn an_endless_file_stops_at_the_cap() {
        match read_capped(Path::new("/dev/zero"), 1000) {
            Err(ReadError::TooLarge { size: None }) => {}
            other => panic!("{other:?}"),
        }
    }
}
