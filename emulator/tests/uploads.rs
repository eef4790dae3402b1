//! Upload sessions, batch commits, write modes and the namespace rules.

mod common;

use common::{content, rpc, Conn, TOKEN};
use dropbox_emulator::{content_hash, Config, Emulator};
use serde_json::{json, Value};

const START: &str = "/2/files/upload_session/start";
const APPEND: &str = "/2/files/upload_session/append_v2";
const FINISH: &str = "/2/files/upload_session/finish";
const BATCH: &str = "/2/files/upload_session/finish_batch_v2";
const UPLOAD: &str = "/2/files/upload";

fn emulator() -> Emulator {
    Emulator::start(Config::default()).expect("start emulator")
}

/// Starts a closed session holding `data`; returns its id.
fn closed_session(emu: &Emulator, data: &[u8]) -> String {
    let reply = content(emu, START, &json!({"close": true}), data);
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["session_id"].as_str().unwrap().to_owned()
}

fn batch_entry(session: &str, offset: usize, commit: Value) -> Value {
    json!({"cursor": {"session_id": session, "offset": offset}, "commit": commit})
}

fn finish_batch(emu: &Emulator, entries: Vec<Value>) -> Vec<Value> {
    let reply = rpc(emu, BATCH, &json!({"entries": entries}));
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["entries"].as_array().unwrap().clone()
}

#[test]
fn session_start_append_and_batch_commit() {
    let emu = emulator();
    let mut conn = Conn::open(&emu);
    let start = conn
        .content(
            START,
            TOKEN,
            &json!({"content_hash": content_hash(b"hello ")}),
            b"hello ",
        )
        .unwrap();
    assert_eq!(start.status, 200, "{}", start.text());
    let id = start.json()["session_id"].as_str().unwrap().to_owned();

    let cursor = |offset: u64| json!({"session_id": id, "offset": offset});
    let wrong = conn
        .content(APPEND, TOKEN, &json!({"cursor": cursor(3)}), b"world")
        .unwrap();
    assert_eq!(wrong.status, 409);
    assert_eq!(wrong.summary(), "incorrect_offset/..");
    assert_eq!(
        wrong.json()["error"],
        json!({".tag": "incorrect_offset", "correct_offset": 6})
    );

    let bad_hash = json!({"cursor": cursor(6), "content_hash": content_hash(b"other")});
    let mismatch = conn.content(APPEND, TOKEN, &bad_hash, b"world").unwrap();
    assert_eq!(
        (mismatch.status, mismatch.summary().as_str()),
        (409, "content_hash_mismatch/..")
    );

    let append = conn
        .content(
            APPEND,
            TOKEN,
            &json!({"cursor": cursor(6), "close": true}),
            b"world",
        )
        .unwrap();
    assert_eq!((append.status, append.text().as_str()), (200, "null"));
    let closed = conn
        .content(APPEND, TOKEN, &json!({"cursor": cursor(11)}), b"!")
        .unwrap();
    assert_eq!(closed.json()["error"][".tag"], "closed");

    let commit = json!({"path": "/Docs/Hello.txt", "mode": "add", "client_modified": "2024-05-06T07:08:09Z"});
    let entries = finish_batch(&emu, vec![batch_entry(&id, 11, commit.clone())]);
    let meta = &entries[0];
    assert_eq!(meta[".tag"], "success");
    assert_eq!(meta["name"], "Hello.txt");
    assert_eq!(meta["path_display"], "/Docs/Hello.txt");
    assert_eq!(meta["path_lower"], "/docs/hello.txt");
    assert_eq!(meta["size"], 11);
    assert_eq!(meta["content_hash"], content_hash(b"hello world"));
    assert_eq!(meta["client_modified"], "2024-05-06T07:08:09Z");
    assert_eq!(meta["is_downloadable"], true);
    assert!(meta["id"].as_str().unwrap().starts_with("id:"));
    let rev = meta["rev"].as_str().unwrap().to_owned();
    assert!(rev.len() >= 9 && rev.bytes().all(|b| b.is_ascii_hexdigit()));
    let server_modified = meta["server_modified"].as_str().unwrap();
    assert_eq!(server_modified.len(), 20);
    assert!(server_modified.ends_with('Z'));
    let stored = emu.file("/docs/HELLO.TXT").unwrap();
    assert_eq!((stored.size, stored.rev.as_str()), (11, rev.as_str()));

    // The session is gone after a successful commit.
    let again = finish_batch(&emu, vec![batch_entry(&id, 11, commit.clone())]);
    assert_eq!(
        again[0],
        json!({".tag": "failure", "failure": {".tag": "lookup_failed", "lookup_failed": {".tag": "not_found"}}})
    );

    // Identical content: success without a new rev.
    let same = closed_session(&emu, b"hello world");
    let entries = finish_batch(&emu, vec![batch_entry(&same, 11, commit.clone())]);
    assert_eq!(
        (entries[0][".tag"].as_str(), entries[0]["rev"].as_str()),
        (Some("success"), Some(rev.as_str()))
    );

    // Different content: conflict, unless autorenamed; entries come back in order.
    let other = closed_session(&emu, b"other content");
    let renamed = closed_session(&emu, b"other content");
    let open = content(&emu, START, &json!({}), b"abc").json()["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let entries = finish_batch(
        &emu,
        vec![
            batch_entry(&other, 13, commit.clone()),
            batch_entry(
                &renamed,
                13,
                json!({"path": "/docs/hello.txt", "autorename": true}),
            ),
            batch_entry(&open, 3, json!({"path": "/open.txt"})),
            batch_entry(&other, 5, json!({"path": "/x.txt"})),
        ],
    );
    assert_eq!(
        entries[0]["failure"],
        json!({".tag": "path", "path": {".tag": "conflict", "conflict": {".tag": "file"}}})
    );
    // The renamed file takes the requested spelling; its parent keeps the stored one.
    assert_eq!(entries[1]["path_display"], "/Docs/hello (2).txt");
    assert_eq!(entries[2]["failure"]["lookup_failed"][".tag"], "not_closed");
    assert_eq!(
        entries[3]["failure"]["lookup_failed"],
        json!({".tag": "incorrect_offset", "correct_offset": 13})
    );
    // The conflicting session survived and can be committed elsewhere.
    let entries = finish_batch(
        &emu,
        vec![batch_entry(&other, 13, json!({"path": "/elsewhere.txt"}))],
    );
    assert_eq!(entries[0][".tag"], "success");

    let paths: Vec<String> = emu.files().into_iter().map(|f| f.path_lower).collect();
    assert_eq!(
        paths,
        ["/docs/hello (2).txt", "/docs/hello.txt", "/elsewhere.txt"]
    );
    let stats = emu.stats();
    assert_eq!(stats.calls[BATCH], 5);
    assert_eq!(stats.upload_bytes, 6 + 5 + 5 + 5 + 1 + 11 + 13 + 13 + 3);
    assert_eq!(stats.max_concurrent_batch_commits, 1);
}

#[test]
fn finish_keeps_session_after_path_error() {
    let emu = emulator();
    let start = content(&emu, START, &json!({}), b"abc");
    let id = start.json()["session_id"].as_str().unwrap().to_owned();
    emu.put_file("/taken.bin", b"different", "2020-01-01T00:00:00Z");

    let arg = |offset: u64, path: &str| json!({"cursor": {"session_id": id, "offset": offset}, "commit": {"path": path, "mode": {".tag": "add"}}});
    let failed = content(&emu, FINISH, &arg(3, "/taken.bin"), b"def");
    assert_eq!(
        (failed.status, failed.summary().as_str()),
        (409, "path/conflict/file/..")
    );
    // The data of the failed call was appended: the retry sends none, at the new offset.
    let stale = content(&emu, FINISH, &arg(3, "/free.bin"), b"def");
    assert_eq!(stale.summary(), "lookup_failed/incorrect_offset/..");
    assert_eq!(stale.json()["error"]["lookup_failed"]["correct_offset"], 6);
    let done = content(&emu, FINISH, &arg(6, "/free.bin"), b"");
    assert_eq!(done.status, 200, "{}", done.text());
    assert_eq!(done.json()["content_hash"], content_hash(b"abcdef"));
    let gone = content(&emu, FINISH, &arg(6, "/free2.bin"), b"");
    assert_eq!(gone.summary(), "lookup_failed/not_found/..");
}

#[test]
fn sessions_expire_after_seven_days() {
    let emu = emulator();
    let id = closed_session(&emu, b"data");
    emu.advance_clock(std::time::Duration::from_secs(7 * 24 * 3600 + 1));
    let entries = finish_batch(
        &emu,
        vec![batch_entry(&id, 4, json!({"path": "/late.bin"}))],
    );
    assert_eq!(entries[0]["failure"]["lookup_failed"][".tag"], "not_found");
}

#[test]
fn plain_upload_and_write_modes() {
    let emu = emulator();
    let up = |arg: Value, body: &[u8]| content(&emu, UPLOAD, &arg, body);
    let first = up(
        json!({"path": "/a/photo.jpg", "content_hash": content_hash(b"one")}),
        b"one",
    );
    assert_eq!(first.status, 200, "{}", first.text());
    let rev1 = first.json()["rev"].as_str().unwrap().to_owned();

    let mismatch = up(
        json!({"path": "/a/photo.jpg", "content_hash": content_hash(b"x")}),
        b"one",
    );
    assert_eq!(mismatch.summary(), "content_hash_mismatch/..");

    let conflict = up(json!({"path": "/a/photo.jpg"}), b"two");
    assert_eq!(conflict.status, 409);
    assert_eq!(conflict.summary(), "path/conflict/file/..");
    let error = conflict.json()["error"].clone();
    assert_eq!(
        error["path"]["reason"],
        json!({".tag": "conflict", "conflict": {".tag": "file"}})
    );
    let session = error["path"]["upload_session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The failed upload's data can be committed from its session.
    let entries = finish_batch(
        &emu,
        vec![batch_entry(
            &session,
            3,
            json!({"path": "/a/from-session.jpg"}),
        )],
    );
    assert_eq!(entries[0]["content_hash"], content_hash(b"two"));

    let strict = up(
        json!({"path": "/a/photo.jpg", "strict_conflict": true}),
        b"one",
    );
    assert_eq!(strict.summary(), "path/conflict/file/..");

    let stale = json!({"path": "/a/photo.jpg", "mode": {".tag": "update", "update": "0123456789"}});
    assert_eq!(
        up(stale.clone(), b"three").summary(),
        "path/conflict/file/.."
    );
    let mut stale_renamed = stale;
    stale_renamed["autorename"] = true.into();
    assert_eq!(
        up(stale_renamed, b"three").json()["name"],
        "photo (conflicted copy).jpg"
    );

    let update = up(
        json!({"path": "/a/photo.jpg", "mode": {".tag": "update", "update": rev1}}),
        b"four",
    );
    assert_eq!(update.status, 200);
    let rev2 = update.json()["rev"].as_str().unwrap().to_owned();
    assert_ne!(rev1, rev2);
    let overwrite = up(
        json!({"path": "/a/photo.jpg", "mode": "overwrite"}),
        b"five",
    );
    assert_eq!(overwrite.json()["size"], 4);
    assert_eq!(
        emu.file("/a/photo.jpg").unwrap().content_hash,
        content_hash(b"five")
    );

    assert_eq!(
        up(json!({"path": "/a"}), b"x").summary(),
        "path/conflict/folder/.."
    );
    assert_eq!(
        up(json!({"path": "/a/photo.jpg/x"}), b"x").summary(),
        "path/conflict/file_ancestor/.."
    );
    for bad in [
        "a.txt",
        "/a//b.txt",
        "/a\\b.txt",
        "/a/",
        &format!("/{}", "n".repeat(256)),
    ] {
        assert_eq!(
            up(json!({"path": bad}), b"x").summary(),
            "path/malformed_path/..",
            "{bad}"
        );
    }
    for bad in [
        "/x/.DS_Store",
        "/Thumbs.db",
        "/desktop.ini",
        "/Icon\r",
        "/.dropbox",
    ] {
        assert_eq!(
            up(json!({"path": bad}), b"x").summary(),
            "path/disallowed_name/..",
            "{bad:?}"
        );
    }

    let bad_time = up(
        json!({"path": "/t.txt", "client_modified": "2024-01-01 00:00:00"}),
        b"x",
    );
    assert_eq!(bad_time.status, 400);
    let bad_mode = up(json!({"path": "/t.txt", "mode": "update"}), b"x");
    assert_eq!(bad_mode.status, 400);
}

#[test]
fn namespace_is_case_insensitive_and_nfc() {
    let emu = emulator();
    let nfd = "/Photos/Cafe\u{301}.jpg";
    let first = content(&emu, UPLOAD, &json!({"path": nfd}), b"espresso");
    assert_eq!(first.status, 200, "{}", first.text());
    let rev = first.json()["rev"].clone();
    let again = content(
        &emu,
        UPLOAD,
        &json!({"path": "/PHOTOS/CAFÉ.JPG"}),
        b"espresso",
    );
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["rev"], rev);
    assert_eq!(again.json()["path_display"], nfd);
    let conflict = content(&emu, UPLOAD, &json!({"path": "/photos/café.jpg"}), b"latte");
    assert_eq!(conflict.summary(), "path/conflict/file/..");

    assert_eq!(emu.files().len(), 1);
    let entry = emu.file("/photos/CAFE\u{301}.JPG").unwrap();
    assert_eq!(entry.path_lower, "/photos/caf\u{e9}.jpg");
    assert_eq!(entry.path_display, nfd);
    let meta = rpc(
        &emu,
        "/2/files/get_metadata",
        &json!({"path": "/pHoToS/café.jpg"}),
    );
    assert_eq!(meta.json()["id"], entry.id);
}

#[test]
fn dropbox_api_arg_must_be_ascii() {
    let emu = emulator();
    let mut conn = Conn::open(&emu);
    let auth = format!("Bearer {TOKEN}");
    let raw = r#"{"path": "/caf\u{e9}.jpg"}"#.replace("\\u{e9}", "é");
    for arg in [raw.into_bytes(), b"{\"path\": \"/a\x7f.jpg\"}".to_vec()] {
        let reply = conn
            .send(
                "POST",
                UPLOAD,
                &[
                    ("Authorization", auth.as_bytes()),
                    ("Dropbox-API-Arg", &arg),
                ],
                b"x",
            )
            .unwrap();
        assert_eq!(reply.status, 400);
        assert!(reply
            .header("Content-Type")
            .unwrap()
            .starts_with("text/plain"));
        assert_eq!(
            reply.text(),
            "Error in call to API function \"files/upload\": HTTP header \"Dropbox-API-Arg\": could not decode input as JSON"
        );
    }
    // The same path escaped as \u00e9 is fine, on the same keep-alive connection.
    let ok = conn
        .content(UPLOAD, TOKEN, &json!({"path": "/café.jpg"}), b"x")
        .unwrap();
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.json()["name"], "café.jpg");

    let not_json = conn
        .send(
            "POST",
            UPLOAD,
            &[
                ("Authorization", auth.as_bytes()),
                ("Dropbox-API-Arg", b"{nope"),
            ],
            b"x",
        )
        .unwrap();
    assert_eq!(not_json.status, 400);
    let missing = conn
        .send("POST", UPLOAD, &[("Authorization", auth.as_bytes())], b"x")
        .unwrap();
    assert_eq!(missing.status, 400);
    let bad_body = conn
        .send("POST", BATCH, &[("Authorization", auth.as_bytes())], b"[")
        .unwrap();
    assert_eq!(bad_body.status, 400);
    let wrong_shape = conn
        .rpc(BATCH, TOKEN, &json!({"entries": [{"cursor": 5}]}))
        .unwrap();
    assert_eq!(wrong_shape.status, 400);
    let empty_batch = conn.rpc(BATCH, TOKEN, &json!({"entries": []})).unwrap();
    assert_eq!(empty_batch.status, 400);
}

#[test]
fn quota_is_enforced() {
    let emu = Emulator::start(Config {
        quota_bytes: Some(10),
        ..Config::default()
    })
    .unwrap();
    assert_eq!(
        content(&emu, UPLOAD, &json!({"path": "/a"}), b"12345678").status,
        200
    );
    let full = content(&emu, UPLOAD, &json!({"path": "/b"}), b"123");
    assert_eq!(full.summary(), "path/insufficient_space/..");
}

#[test]
fn oversized_bodies_are_refused() {
    let emu = emulator();
    let body = vec![0u8; 150 * 1024 * 1024 + 1];
    let mut conn = Conn::open(&emu);
    let reply = conn.content(START, TOKEN, &json!({}), &body).unwrap();
    assert_eq!(
        (reply.status, reply.summary().as_str()),
        (409, "payload_too_large/..")
    );
    // The connection is still usable and the bytes were counted.
    let ok = conn.content(START, TOKEN, &json!({}), b"").unwrap();
    assert_eq!(ok.status, 200);
    assert_eq!(emu.stats().upload_bytes, body.len() as u64);
}

#[test]
fn put_file_seeds_the_namespace() {
    let emu = emulator();
    let entry = emu.put_file(
        "/Seed/Dir/x.bin",
        &vec![b'A'; 4_194_305],
        "2021-02-03T04:05:06Z",
    );
    assert_eq!(
        entry.content_hash,
        "8f553da8d00d0bf509d8470e242888be33019c20c0544811f5b2b89e98360b92"
    );
    assert_eq!(entry.client_modified, "2021-02-03T04:05:06Z");
    assert_eq!(emu.file("/seed/dir/X.BIN"), Some(entry));
    let folder = rpc(&emu, "/2/files/get_metadata", &json!({"path": "/seed/dir"}));
    assert_eq!(folder.json()[".tag"], "folder");
    assert_eq!(folder.json()["path_display"], "/Seed/Dir");
}
