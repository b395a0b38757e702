//! `Sensitive<T>`: a value that prints, debugs and serializes as `(sensitive)`. Secrets,
//! tokens and passwords live only inside it.

use std::fmt;

use serde::{Serialize, Serializer};

/// A secret value. Read it with [`Sensitive::expose`], only where it is sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Sensitive<T>(T);

impl<T> Sensitive<T> {
    pub fn new(v: T) -> Sensitive<T> {
        Sensitive(v)
    }
    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(sensitive)")
    }
}

impl<T> fmt::Display for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(sensitive)")
    }
}

impl<T> Serialize for Sensitive<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("(sensitive)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_shows_the_value() {
        let s = Sensitive::new("hunter2".to_string());
        assert_eq!(format!("{s} {s:?}"), "(sensitive) (sensitive)");
        assert_eq!(serde_json::to_string(&s).unwrap_or_default(), "\"(sensitive)\"");
        assert_eq!(s.expose(), "hunter2");
    }
}
