//! Known differences, the per-recording tables, the totals and the section of
//! docs/local-cloud.md that carries them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Deserialize;

use super::replay::{Outcome, Verdict};

/// The pass rate (% of compared exchanges, known differences counted as FAIL) issue 18 asks
/// for: the test fails below it (60.8% when the driver landed, 92.6% once the family fixes
/// were in).
pub const MIN_PASS_RATE: f64 = 90.0;

const BEGIN: &str = "<!-- conformance:begin -->";
const END: &str = "<!-- conformance:end -->";

/// One known difference.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnownEntry {
    pub recording: String,
    pub exchange: usize,
    /// `status`, `code`, `header:<name>`, `body:<path>`, `poll:status`, `poll:body:<path>`.
    pub field: String,
    pub reason: String,
}

pub struct Known(Vec<KnownEntry>);

impl Known {
    pub fn load(path: &Path) -> Known {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.trim().is_empty() {
            return Known(Vec::new());
        }
        let list: Option<Vec<KnownEntry>> = serde_saphyr::from_str(&text).expect("known-differences.yaml parses");
        Known(list.unwrap_or_default())
    }

    fn reason(&self, recording: &str, n: usize, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|k| k.recording == recording && k.exchange == n && k.field == field)
            .map(|k| k.reason.as_str())
    }

    /// Entries of replayed recordings that matched nothing.
    pub fn stale(&self, results: &[Result]) -> Vec<String> {
        self.0
            .iter()
            .filter(|k| results.iter().any(|r| r.name == k.recording))
            .filter(|k| {
                !results.iter().any(|r| {
                    r.name == k.recording
                        && r.outcomes
                            .iter()
                            .any(|o| o.n == k.exchange && o.found.diffs.iter().any(|d| d.field == k.field))
                })
            })
            .map(|k| format!("{} #{} {}", k.recording, k.exchange, k.field))
            .collect()
    }
}

/// One recording's outcomes with their known differences applied.
pub struct Result {
    pub name: String,
    pub outcomes: Vec<Outcome>,
    pub notes: Vec<String>,
    /// Per outcome (same order): the reason of each diff that is known, `None` if unknown.
    known: Vec<Vec<Option<String>>>,
}

impl Result {
    pub fn new(name: &str, outcomes: Vec<Outcome>, notes: Vec<String>, known: &Known) -> Result {
        let k = outcomes
            .iter()
            .map(|o| o.found.diffs.iter().map(|d| known.reason(name, o.n, &d.field).map(str::to_string)).collect())
            .collect();
        Result { name: name.to_string(), outcomes, notes, known: k }
    }

    fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.outcomes.iter().filter(|o| f(o)).count()
    }

    pub fn passed(&self) -> usize {
        self.count(|o| o.verdict == Verdict::Pass)
    }
    pub fn failed(&self) -> usize {
        self.count(|o| o.verdict == Verdict::Fail)
    }
    pub fn skipped(&self) -> usize {
        self.count(|o| matches!(o.verdict, Verdict::Skip(_)))
    }
    /// FAILs whose every difference is known.
    pub fn known_failed(&self) -> usize {
        self.outcomes
            .iter()
            .zip(&self.known)
            .filter(|(o, k)| o.verdict == Verdict::Fail && k.iter().all(Option::is_some))
            .count()
    }

    /// Differences not in known-differences.yaml, one line each.
    pub fn unknown_failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (o, k) in self.outcomes.iter().zip(&self.known) {
            for (d, r) in o.found.diffs.iter().zip(k) {
                if r.is_none() {
                    out.push(format!(
                        "- recording: {}\n  exchange: {}\n  field: {:?}\n  reason: \"pending: {} fixes\"\n  # {}: {}",
                        self.name,
                        o.n,
                        d.field,
                        o.family,
                        o.label,
                        d.detail.replace('\n', " ")
                    ));
                }
            }
        }
        out
    }
}

/// The table of each recording (every difference and the local extras in verbose mode).
pub fn tables(results: &[Result], verbose: bool) -> String {
    let mut s = String::new();
    for r in results {
        let _ = writeln!(
            s,
            "\n== {}: {} passed, {} failed ({} known), {} skipped",
            r.name,
            r.passed(),
            r.failed(),
            r.known_failed(),
            r.skipped()
        );
        for n in &r.notes {
            let _ = writeln!(s, "   setup: {n}");
        }
        let _ = writeln!(s, "   {:>3}  {:<78} {:>5} {:>5}  verdict", "#", "exchange", "azure", "local");
        for (o, k) in r.outcomes.iter().zip(&r.known) {
            let local = o.local.map_or("-".to_string(), |l| l.to_string());
            let verdict = match &o.verdict {
                Verdict::Pass => "PASS".to_string(),
                Verdict::Fail if k.iter().all(Option::is_some) => "FAIL (known)".to_string(),
                Verdict::Fail => "FAIL".to_string(),
                Verdict::Skip(why) => format!("SKIP: {why}"),
            };
            let _ = writeln!(s, "   {:>3}  {:<78} {:>5} {:>5}  {verdict}", o.n, o.label, o.azure, local);
            for (d, why) in o.found.diffs.iter().zip(k) {
                let tag = why.as_deref().map_or(String::new(), |w| format!(" [known: {w}]"));
                let detail: String = if verbose { d.detail.clone() } else { d.detail.chars().take(120).collect() };
                let _ = writeln!(s, "          {}: {detail}{tag}", d.field);
            }
            if verbose && !o.found.extra.is_empty() {
                let _ = writeln!(s, "          local extras: {}", o.found.extra.join(", "));
            }
            if verbose && o.found.unmatched > 0 {
                let _ = writeln!(s, "          {} Azure list item(s) made outside the recording", o.found.unmatched);
            }
        }
    }
    s
}

/// The counts over every replayed recording.
#[derive(Default)]
pub struct Totals {
    pub recordings_run: usize,
    pub passed: usize,
    pub failed: usize,
    pub known: usize,
    pub skipped: usize,
    pub reasons: BTreeMap<String, usize>,
    /// family → (passed, failed, skipped)
    pub families: BTreeMap<String, (usize, usize, usize)>,
}

impl Totals {
    pub fn of(results: &[Result]) -> Totals {
        let mut t = Totals::default();
        for r in results {
            if r.passed() + r.failed() > 0 {
                t.recordings_run += 1;
            }
            t.passed += r.passed();
            t.failed += r.failed();
            t.known += r.known_failed();
            t.skipped += r.skipped();
            for o in &r.outcomes {
                let f = t.families.entry(o.family.clone()).or_default();
                match &o.verdict {
                    Verdict::Pass => f.0 += 1,
                    Verdict::Fail => f.1 += 1,
                    Verdict::Skip(why) => {
                        f.2 += 1;
                        *t.reasons.entry(why.clone()).or_default() += 1;
                    }
                }
            }
        }
        t
    }

    pub fn all(&self) -> usize {
        self.passed + self.failed + self.skipped
    }

    /// % of compared exchanges that passed.
    pub fn pass_rate(&self) -> f64 {
        rate(self.passed, self.passed + self.failed)
    }

    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} passed, {} failed, {} skipped ({} of the failed are known differences; pass rate {:.1}% of {} compared exchanges; {} recordings run)\n",
            self.passed,
            self.failed,
            self.skipped,
            self.known,
            self.pass_rate(),
            self.passed + self.failed,
            self.recordings_run
        );
        for (why, n) in &self.reasons {
            let _ = writeln!(s, "  SKIP {n}: {why}");
        }
        s
    }
}

fn rate(part: usize, whole: usize) -> f64 {
    if whole == 0 { 100.0 } else { part as f64 * 100.0 / whole as f64 }
}

/// The generated section of docs/local-cloud.md (between the markers).
pub fn doc_section(results: &[Result], t: &Totals) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "| recording | exchanges | pass | fail | of which known | skip |");
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|");
    for r in results {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            r.name,
            r.outcomes.len(),
            r.passed(),
            r.failed(),
            r.known_failed(),
            r.skipped()
        );
    }
    let _ = writeln!(s, "| **total** | {} | {} | {} | {} | {} |\n", t.all(), t.passed, t.failed, t.known, t.skipped);
    let _ = writeln!(
        s,
        "{} passed, {} failed, {} skipped: {:.1}% of the {} compared exchanges pass (known differences counted as FAIL); {:.1}% of all exchanges are skipped; {} recordings run.\n",
        t.passed,
        t.failed,
        t.skipped,
        t.pass_rate(),
        t.passed + t.failed,
        rate(t.skipped, t.all()),
        t.recordings_run
    );
    let _ = writeln!(s, "| family | pass | fail | skip | pass rate |");
    let _ = writeln!(s, "|---|---:|---:|---:|---:|");
    for (f, (p, fl, sk)) in &t.families {
        let r = if p + fl == 0 { "n/a".to_string() } else { format!("{:.1}%", rate(*p, p + fl)) };
        let _ = writeln!(s, "| {f} | {p} | {fl} | {sk} | {r} |");
    }
    let _ = writeln!(s, "\nSKIPs per reason:\n");
    for (why, n) in &t.reasons {
        let _ = writeln!(s, "- {n}: {why}");
    }
    s
}

pub fn current_section(doc: &str) -> Option<&str> {
    let b = doc.find(BEGIN)? + BEGIN.len();
    let e = doc[b..].find(END)? + b;
    Some(&doc[b..e])
}

pub fn replace_section(doc: &str, section: &str) -> Option<String> {
    let b = doc.find(BEGIN)? + BEGIN.len();
    let e = doc[b..].find(END)? + b;
    Some(format!("{}\n{}{}", &doc[..b], section, &doc[e..]))
}
