//! The `Dropbox-API-Arg` header: JSON that is "HTTP header safe" — every non-ASCII character and
//! 0x7F written as `\uXXXX` (UTF-16, so emoji become surrogate pairs). serde_json has no such
//! mode, so the serialized JSON is escaped afterwards: outside strings it is ASCII already, and
//! inside strings a `\uXXXX` escape means the same character.

/// Serialize `value` for the `Dropbox-API-Arg` header.
pub fn header_arg<T: serde::Serialize>(value: &T) -> serde_json::Result<String> {
    Ok(ascii_escape(&serde_json::to_string(value)?))
}

/// Escape every non-ASCII character and DEL of a JSON text as `\uXXXX`.
pub fn ascii_escape(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() && c != '\u{7f}' {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_ascii_and_del_are_escaped() {
        // Dropbox's own example.
        let v = serde_json::json!({"field": "some_\u{fc}\u{f1}\u{ee}c\u{f8}d\u{e9}_and_\u{7f}"});
        assert_eq!(header_arg(&v).unwrap(), r#"{"field":"some_\u00fc\u00f1\u00eec\u00f8d\u00e9_and_\u007f"}"#);
    }

    #[test]
    fn emoji_become_surrogate_pairs_and_round_trip() {
        let path = "/Photos/2023/Caf\u{e9} \u{1f389}/IMG_0001.HEIC";
        let arg = header_arg(&serde_json::json!({"path": path, "mode": "add"})).unwrap();
        assert!(arg.is_ascii());
        assert!(arg.contains(r"\ud83c\udf89"), "{arg}");
        let back: serde_json::Value = serde_json::from_str(&arg).unwrap();
        assert_eq!(back["path"], path);
    }
}
