//! File and folder names: NFC output, case- and normalization-insensitive comparison (as Dropbox
//! and macOS compare), characters that Windows, macOS or Dropbox refuse, and the stable
//! ` (2)` suffix for a taken name.

use unicode_normalization::UnicodeNormalization;

/// The longest output file name, in bytes (most file systems allow 255).
const MAX_NAME_BYTES: usize = 240;

/// NFC form of a name.
pub fn nfc(s: &str) -> String {
    s.nfc().collect()
}

/// The key under which two names collide: NFC, then lower case. `PICT0008.JPG`, `pict0008.jpg`
/// and an NFD `Café.jpg` vs NFC `café.jpg` each share one key.
pub fn collision_key(name: &str) -> String {
    nfc(name).to_lowercase().nfc().collect()
}

/// Make one path component safe everywhere: NFC; `/ \ : * ? " < > |` and control characters
/// become `_`; no leading or trailing dot or space (nothing hidden); not `.`/`..`; at most
/// `MAX_NAME_BYTES` bytes (the extension is kept).
pub fn safe_component(raw: &str) -> String {
    let mut s: String = nfc(raw)
        .chars()
        .map(|c| match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    while s.ends_with('.') || s.ends_with(' ') {
        s.pop();
    }
    // No leading space, and no leading dot: the tree holds no hidden files or folders.
    let s = s.trim_start_matches([' ', '.']).to_string();
    let s = if s.is_empty() || s == "." || s == ".." { "unnamed".to_string() } else { s };
    truncate_keeping_extension(&s, MAX_NAME_BYTES)
}

fn truncate_keeping_extension(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    // Keep a real extension (short, like `HEIC` or `jpeg`); a "extension" longer than that is
    // part of the name and is cut with it.
    let (stem, ext) = match split_ext(s) {
        (stem, ext) if !ext.is_empty() && ext.len() <= 16 && !stem.is_empty() => (stem, ext),
        _ => (s, ""),
    };
    let ext_len = if ext.is_empty() { 0 } else { ext.len() + 1 };
    let mut cut = max.saturating_sub(ext_len).min(stem.len());
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    // The cut may end on a space or a dot: no trailing dot or space, as promised.
    let stem = stem[..cut].trim_end_matches(['.', ' ']);
    let stem = if stem.is_empty() { "unnamed" } else { stem };
    if ext.is_empty() {
        stem.to_string()
    } else {
        format!("{stem}.{ext}")
    }
}

/// `IMG_0009.JPG` → (`IMG_0009`, `JPG`); names without a dot have an empty extension.
pub fn split_ext(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i + 1..]),
        _ => (name, ""),
    }
}

/// The n-th spelling of a name: n = 1 is the name itself, n ≥ 2 is `stem (n).ext`.
pub fn with_suffix(name: &str, n: u32) -> String {
    if n <= 1 {
        return name.to_string();
    }
    let (stem, ext) = split_ext(name);
    if ext.is_empty() {
        format!("{stem} ({n})")
    } else {
        format!("{stem} ({n}).{ext}")
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn long_names_are_cut_without_breaking_the_promises() {
        // A long "extension" is part of the name: the result still fits.
        let long_ext = format!("a.{}", "b".repeat(239));
        assert_eq!(safe_component(&long_ext).len(), 240);
        let huge_ext = format!("a.{}", "b".repeat(300));
        assert!(safe_component(&huge_ext).len() <= 240);
        // A cut that lands after a space leaves no trailing space.
        let spaced = format!("{} b", "a".repeat(239));
        let out = safe_component(&spaced);
        assert!(!out.ends_with(' ') && out.len() <= 240, "{out:?}");
        // A real extension is kept, on a char boundary.
        let accented = format!("{}.HEIC", "é".repeat(200));
        let out = safe_component(&accented);
        assert!(out.ends_with(".HEIC") && out.len() <= 240, "{out:?}");
    }

    use super::*;

    #[test]
    fn case_and_normalization_collide() {
        assert_eq!(collision_key("PICT0008.JPG"), collision_key("pict0008.jpg"));
        let nfd = "Cafe\u{301}.jpg";
        let nfc_lower = "caf\u{e9}.jpg";
        assert_eq!(collision_key(nfd), collision_key(nfc_lower));
        assert_ne!(collision_key("IMG_0001.JPG"), collision_key("IMG_0002.JPG"));
        assert_eq!(nfc(nfd), "Caf\u{e9}.jpg");
    }

    #[test]
    fn suffixes() {
        assert_eq!(with_suffix("IMG_0009.JPG", 1), "IMG_0009.JPG");
        assert_eq!(with_suffix("IMG_0009.JPG", 2), "IMG_0009 (2).JPG");
        assert_eq!(with_suffix("archive.tar.gz", 3), "archive.tar (3).gz");
        assert_eq!(with_suffix("README", 2), "README (2)");
        assert_eq!(with_suffix(".hidden", 2), ".hidden (2)");
    }

    #[test]
    fn unsafe_characters() {
        assert_eq!(safe_component("a/b\\c:d*e?f\"g<h>i|j"), "a_b_c_d_e_f_g_h_i_j");
        assert_eq!(safe_component("Trip. "), "Trip");
        assert_eq!(safe_component(".."), "unnamed");
        assert_eq!(safe_component(""), "unnamed");
        assert_eq!(safe_component("nul\0byte.jpg"), "nul_byte.jpg");
        assert_eq!(safe_component("🎉 party.HEIC"), "🎉 party.HEIC");
    }

    #[test]
    fn long_names_keep_their_extension() {
        let long = format!("{}.HEIC", "é".repeat(200));
        let s = safe_component(&long);
        assert!(s.len() <= MAX_NAME_BYTES, "{}", s.len());
        assert!(s.ends_with(".HEIC"));
    }
}
