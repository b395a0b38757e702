//! Data Lake paths as the dfs and WebHDFS planes address them: percent-decoded once, then
//! split on `/`, empty segments dropped, and refused when any segment is `.` or `..` — whether
//! the request spelled it plainly, percent-encoded (`%2e%2e`) or hid a `/` in a segment
//! (`..%2fevil.txt`). Every path a plane stores went through [`normalise`], so no stored
//! entry is named `.` or `..`.

use super::http::percent_decode;

/// The absolute, normalised path of `raw` (the URL's path after the file system or
/// `/webhdfs/v1`, or a query parameter already decoded once), or the segment refused.
///
/// # Errors
/// A `.` or `..` segment, after decoding.
pub fn normalise(raw: &str, decode: bool) -> Result<String, String> {
    let decoded = if decode { percent_decode(raw, false) } else { raw.to_string() };
    let mut parts = Vec::new();
    for seg in decoded.split('/').filter(|s| !s.is_empty()) {
        if seg == "." || seg == ".." {
            return Err(seg.to_string());
        }
        parts.push(seg);
    }
    Ok(format!("/{}", parts.join("/")))
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn traversal_is_refused_however_spelled() {
        assert_eq!(normalise("a//b/", true).ok().as_deref(), Some("/a/b"));
        assert_eq!(normalise("", true).ok().as_deref(), Some("/"));
        for bad in ["a/../b", "..%2fevil.txt", "%2e%2e/x", "%2E", "a/%2e%2E%2Fb", "./a", "x/.."] {
            assert!(normalise(bad, true).is_err(), "{bad}");
        }
        assert_eq!(normalise("..%2fx", false).ok().as_deref(), Some("/..%2fx"));
        assert_eq!(normalise("a%20b/...", true).ok().as_deref(), Some("/a b/..."));
    }
}
