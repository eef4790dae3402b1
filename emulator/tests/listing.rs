//! list_folder paging and change cursors, get_metadata and create_folder_v2.

mod common;

use common::{content, rpc};
use dropbox_emulator::{Config, Emulator, Fault, FaultKind};
use serde_json::{json, Value};

const LIST: &str = "/2/files/list_folder";
const CONTINUE: &str = "/2/files/list_folder/continue";

fn paths(page: &Value) -> Vec<String> {
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path_display"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn paging_then_changes() {
    let emu = Emulator::start(Config {
        list_limit: 2,
        ..Config::default()
    })
    .unwrap();
    for path in ["/P/2023/a.jpg", "/P/2023/b.jpg", "/P/2024/c.jpg"] {
        emu.put_file(path, path.as_bytes(), "2024-01-01T00:00:00Z");
    }
    emu.put_file("/other.txt", b"x", "2024-01-01T00:00:00Z");

    let first = rpc(
        &emu,
        LIST,
        &json!({"path": "/p", "recursive": true, "limit": 100}),
    );
    assert_eq!(first.status, 200, "{}", first.text());
    let mut page = first.json();
    let mut seen = paths(&page);
    assert_eq!(seen.len(), 2);
    let mut pages = 1;
    while page["has_more"] == true {
        let reply = rpc(&emu, CONTINUE, &json!({"cursor": page["cursor"]}));
        assert_eq!(reply.status, 200);
        page = reply.json();
        seen.extend(paths(&page));
        pages += 1;
    }
    assert_eq!(pages, 3);
    assert_eq!(
        seen,
        [
            "/P/2023",
            "/P/2023/a.jpg",
            "/P/2023/b.jpg",
            "/P/2024",
            "/P/2024/c.jpg"
        ]
    );
    let file = &page["entries"][0];
    assert_eq!(file[".tag"], "file");
    assert_eq!(file["client_modified"], "2024-01-01T00:00:00Z");

    // Nothing changed yet.
    let idle = rpc(&emu, CONTINUE, &json!({"cursor": page["cursor"]})).json();
    assert_eq!((paths(&idle).len(), &idle["has_more"]), (0, &json!(false)));

    // Later changes under the path show up on the final cursor; others don't.
    let cursor = page["cursor"].clone();
    emu.put_file("/P/2025/d.jpg", b"d", "2024-01-01T00:00:00Z");
    emu.put_file("/P/2023/a.jpg", b"changed", "2024-01-01T00:00:00Z");
    emu.put_file("/elsewhere.jpg", b"e", "2024-01-01T00:00:00Z");
    let changes = rpc(&emu, CONTINUE, &json!({"cursor": cursor})).json();
    assert_eq!(paths(&changes), ["/P/2023/a.jpg", "/P/2025"]);
    assert_eq!(changes["has_more"], true);
    let rest = rpc(&emu, CONTINUE, &json!({"cursor": changes["cursor"]})).json();
    assert_eq!(paths(&rest), ["/P/2025/d.jpg"]);
    assert_eq!(rest["has_more"], false);
    // Cursors are immutable: replaying one replays its page.
    let replay = rpc(&emu, CONTINUE, &json!({"cursor": cursor})).json();
    assert_eq!(paths(&replay), ["/P/2023/a.jpg", "/P/2025"]);
}

#[test]
fn listing_rules_and_errors() {
    let emu = Emulator::start(Config::default()).unwrap();
    emu.put_file("/a/b/c.txt", b"c", "2024-01-01T00:00:00Z");
    emu.put_file("/a/d.txt", b"d", "2024-01-01T00:00:00Z");

    let root = rpc(&emu, LIST, &json!({"path": ""})).json();
    assert_eq!(paths(&root), ["/a"]);
    assert_eq!(
        root["entries"][0],
        json!({".tag": "folder", "name": "a", "id": root["entries"][0]["id"], "path_lower": "/a", "path_display": "/a"})
    );
    assert_eq!(
        paths(&rpc(&emu, LIST, &json!({"path": "/A"})).json()),
        ["/a/b", "/a/d.txt"]
    );
    assert_eq!(
        paths(
            &rpc(
                &emu,
                LIST,
                &json!({"path": "", "recursive": true, "limit": 1})
            )
            .json()
        ),
        ["/a"]
    );

    let missing = rpc(&emu, LIST, &json!({"path": "/nope"}));
    assert_eq!(missing.status, 409);
    assert_eq!(
        missing.json()["error"],
        json!({".tag": "path", "path": {".tag": "not_found"}})
    );
    assert_eq!(missing.summary(), "path/not_found/..");
    assert_eq!(
        rpc(&emu, LIST, &json!({"path": "/a/d.txt"})).summary(),
        "path/not_folder/.."
    );
    assert_eq!(rpc(&emu, LIST, &json!({"path": "a"})).status, 400);
    assert_eq!(
        rpc(&emu, LIST, &json!({"path": "", "limit": 0})).status,
        400
    );
    assert_eq!(rpc(&emu, LIST, &json!({})).status, 400);

    let unknown = rpc(&emu, CONTINUE, &json!({"cursor": "bogus"}));
    assert_eq!(
        (unknown.status, unknown.json()["error"].clone()),
        (409, json!({".tag": "reset"}))
    );

    let cursor = rpc(&emu, LIST, &json!({"path": ""})).json()["cursor"].clone();
    emu.inject(Fault {
        route: CONTINUE.into(),
        nth: 1,
        kind: FaultKind::ListReset,
    });
    let reset = rpc(&emu, CONTINUE, &json!({"cursor": cursor}));
    assert_eq!((reset.status, reset.summary().as_str()), (409, "reset/.."));
    assert_eq!(rpc(&emu, CONTINUE, &json!({"cursor": cursor})).status, 200);
    let log = emu.stats().log;
    let faulted: Vec<_> = log.iter().filter(|e| e.fault.is_some()).collect();
    assert_eq!(faulted.len(), 1);
    assert_eq!(
        (faulted[0].status, faulted[0].fault.as_deref()),
        (409, Some("ListReset"))
    );
}

#[test]
fn metadata_and_folders() {
    let emu = Emulator::start(Config::default()).unwrap();
    let created = rpc(
        &emu,
        "/2/files/create_folder_v2",
        &json!({"path": "/Trips/Rome"}),
    );
    assert_eq!(created.status, 200, "{}", created.text());
    assert_eq!(created.json()["metadata"]["path_display"], "/Trips/Rome");
    assert_eq!(created.json()["metadata"][".tag"], "folder");

    let exists = rpc(
        &emu,
        "/2/files/create_folder_v2",
        &json!({"path": "/trips/rome"}),
    );
    assert_eq!(exists.summary(), "path/conflict/folder/..");
    let renamed = rpc(
        &emu,
        "/2/files/create_folder_v2",
        &json!({"path": "/trips/rome", "autorename": true}),
    );
    assert_eq!(
        renamed.json()["metadata"]["path_display"],
        "/Trips/rome (2)"
    );

    let put = content(
        &emu,
        "/2/files/upload",
        &json!({"path": "/Trips/Rome/x.jpg"}),
        b"x",
    )
    .json();
    let meta = rpc(
        &emu,
        "/2/files/get_metadata",
        &json!({"path": "/trips/rome/X.jpg"}),
    );
    assert_eq!(meta.json(), put);
    let folder = rpc(&emu, "/2/files/get_metadata", &json!({"path": "/trips"})).json();
    assert_eq!(folder["name"], "Trips");
    let missing = rpc(&emu, "/2/files/get_metadata", &json!({"path": "/nope"}));
    assert_eq!(missing.summary(), "path/not_found/..");
    assert_eq!(
        rpc(&emu, "/2/files/get_metadata", &json!({"path": ""})).status,
        400
    );
}
