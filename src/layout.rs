//! The destination layout template: `{year}/{album}/{name}` by default (an asset in no album
//! lands in `{year}/{name}`). Tokens: `{year}`, `{month}`,
//! `{day}`, `{album}`, `{name}`, `{stem}`, `{ext}`, `{kind}`. A segment that renders empty (an
//! asset in no album under `{year}/{album}/{name}`) is dropped. Every rendered segment is made
//! safe with [`crate::names::safe_component`], so a template can never climb out of the output
//! folder.

use chrono::Datelike;

use crate::error::Error;
use crate::names::{safe_component, split_ext};

pub const DEFAULT_LAYOUT: &str = "{year}/{album}/{name}";
const TOKENS: [&str; 8] = ["year", "month", "day", "album", "name", "stem", "ext", "kind"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    segments: Vec<String>,
}

/// Values for one asset.
pub struct LayoutVars<'a> {
    /// None: no date known; date tokens render as `undated`.
    pub capture: Option<&'a chrono::NaiveDateTime>,
    pub album: Option<&'a str>,
    pub name: &'a str,
    pub kind: &'a str,
}

impl Layout {
    pub fn parse(template: &str) -> Result<Layout, Error> {
        let bad = |why: &str| Error::Layout { template: template.to_string(), why: why.to_string() };
        let segments: Vec<String> = template.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect();
        let last = segments.last().ok_or_else(|| bad("it is empty"))?;
        if !(last.contains("{name}") || last.contains("{stem}")) {
            return Err(bad("its last segment must contain {name} or {stem}, so every file keeps its own name"));
        }
        for seg in &segments {
            if seg == ".." || seg == "." {
                return Err(bad("'.' and '..' segments are not allowed"));
            }
            let mut rest = seg.as_str();
            while let Some(open) = rest.find('{') {
                let close = rest[open..].find('}').ok_or_else(|| bad("a '{' is not closed"))? + open;
                let token = &rest[open + 1..close];
                if !TOKENS.contains(&token) {
                    return Err(bad(&format!("unknown token {{{token}}} (known: {})", TOKENS.join(", "))));
                }
                rest = &rest[close + 1..];
            }
        }
        Ok(Layout { segments })
    }

    /// The destination folder (relative, '/'-separated, may be empty) and the file name.
    pub fn render(&self, v: &LayoutVars) -> (String, String) {
        let (stem, ext) = split_ext(v.name);
        let mut parts: Vec<String> = Vec::new();
        for seg in &self.segments {
            let mut out = seg.clone();
            let date = |f: &dyn Fn(&chrono::NaiveDateTime) -> String| v.capture.map(f).unwrap_or_else(|| "undated".into());
            for (token, value) in [
                ("{year}", date(&|c| format!("{:04}", c.year()))),
                ("{month}", date(&|c| format!("{:02}", c.month()))),
                ("{day}", date(&|c| format!("{:02}", c.day()))),
                ("{album}", v.album.unwrap_or("").to_string()),
                ("{name}", v.name.to_string()),
                ("{stem}", stem.to_string()),
                ("{ext}", ext.to_string()),
                ("{kind}", v.kind.to_string()),
            ] {
                if out.contains(token) {
                    out = out.replace(token, &value);
                }
            }
            if !out.trim().is_empty() {
                parts.push(safe_component(&out));
            }
        }
        let name = parts.pop().unwrap_or_else(|| safe_component(v.name));
        (parts.join("/"), name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn vars<'a>(t: &'a chrono::NaiveDateTime, album: Option<&'a str>, name: &'a str) -> LayoutVars<'a> {
        LayoutVars { capture: Some(t), album, name, kind: "heif" }
    }

    #[test]
    fn default_and_tokens() {
        let t = NaiveDate::from_ymd_opt(2021, 4, 9).unwrap().and_hms_opt(1, 2, 3).unwrap();
        let l = Layout::parse(DEFAULT_LAYOUT).unwrap();
        assert_eq!(l.render(&vars(&t, None, "IMG_1.HEIC")), ("2021".into(), "IMG_1.HEIC".into()));
        let l = Layout::parse("{year}/{month}-{day}/{album}/{stem}.{ext}").unwrap();
        assert_eq!(l.render(&vars(&t, Some("Trip"), "IMG_1.HEIC")), ("2021/04-09/Trip".into(), "IMG_1.HEIC".into()));
        // No album: the empty segment disappears.
        assert_eq!(l.render(&vars(&t, None, "IMG_1.HEIC")), ("2021/04-09".into(), "IMG_1.HEIC".into()));
        // Album names cannot escape or carry unsafe characters.
        assert_eq!(l.render(&vars(&t, Some("../a:b"), "x.jpg")).0, "2021/04-09/_a_b");
    }

    #[test]
    fn bad_templates_are_refused() {
        assert!(Layout::parse("").is_err());
        assert!(Layout::parse("{year}").is_err());
        assert!(Layout::parse("{year}/{nope}/{name}").is_err());
        assert!(Layout::parse("../{name}").is_err());
        assert!(Layout::parse("{year/{name}").is_err());
        assert!(Layout::parse("photos/{year}/{name}").is_ok());
    }
}
