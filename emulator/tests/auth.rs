//! Bearer tokens and the OAuth endpoints.

mod common;

use std::time::Duration;

use common::{Conn, Reply, TOKEN};
use dropbox_emulator::{Config, Emulator};
use serde_json::{json, Value};

const LIST: &str = "/2/files/list_folder";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// RFC 7636 appendix B: the S256 challenge of `VERIFIER`.
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn list(emu: &Emulator, token: &str) -> Reply {
    Conn::open(emu)
        .rpc(LIST, token, &json!({"path": ""}))
        .unwrap()
}

fn authorize(emu: &Emulator, client_id: &str) -> Reply {
    let query = format!(
        "/oauth2/authorize?client_id={client_id}&response_type=code&code_challenge={CHALLENGE}&code_challenge_method=S256&token_access_type=offline"
    );
    Conn::open(emu).send("GET", &query, &[], b"").unwrap()
}

fn token(emu: &Emulator, form: &str) -> Reply {
    Conn::open(emu)
        .send(
            "POST",
            "/oauth2/token",
            &[("Content-Type", b"application/x-www-form-urlencoded")],
            form.as_bytes(),
        )
        .unwrap()
}

fn tag(reply: &Reply) -> Value {
    reply.json()["error"][".tag"].clone()
}

#[test]
fn pkce_exchange_refresh_and_expiry() {
    let emu = Emulator::start(Config::default()).unwrap();
    assert_eq!(authorize(&emu, "wrong-app").status, 400);
    let code_reply = authorize(&emu, "test-app-key");
    assert_eq!(code_reply.status, 200);
    assert!(code_reply
        .header("Content-Type")
        .unwrap()
        .starts_with("text/plain"));
    let code = code_reply.text();

    let bad = token(
        &emu,
        &format!(
            "grant_type=authorization_code&code={code}&client_id=test-app-key&code_verifier=wrong"
        ),
    );
    assert_eq!(
        (bad.status, bad.json()["error"].clone()),
        (400, json!("invalid_grant"))
    );
    let wrong_client = token(
        &emu,
        &format!("grant_type=authorization_code&code={code}&client_id=x&code_verifier={VERIFIER}"),
    );
    assert_eq!(wrong_client.json()["error"], "invalid_client");

    let good = token(&emu, &format!("grant_type=authorization_code&code={code}&client_id=test-app-key&code_verifier={VERIFIER}"));
    assert_eq!(good.status, 200, "{}", good.text());
    let grant = good.json();
    assert_eq!(grant["token_type"], "bearer");
    assert_eq!(grant["expires_in"], 4 * 3600);
    assert_eq!(grant["scope"], "files.content.write files.metadata.read");
    assert_eq!(
        (grant["uid"].as_str(), grant["account_id"].as_str()),
        (Some("1"), Some("dbid:emulator"))
    );
    let access = grant["access_token"].as_str().unwrap().to_owned();
    let refresh = grant["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(list(&emu, &access).status, 200);

    let reused = token(&emu, &format!("grant_type=authorization_code&code={code}&client_id=test-app-key&code_verifier={VERIFIER}"));
    assert_eq!(reused.json()["error"], "invalid_grant");

    let refresh_form =
        format!("grant_type=refresh_token&refresh_token={refresh}&client_id=test-app-key");
    let refreshed = token(&emu, &refresh_form).json();
    assert_eq!(refreshed["expires_in"], 4 * 3600);
    assert!(refreshed.get("refresh_token").is_none());
    let access2 = refreshed["access_token"].as_str().unwrap().to_owned();
    assert_ne!(access, access2);

    emu.expire_tokens();
    for old in [access.as_str(), access2.as_str(), TOKEN] {
        let reply = list(&emu, old);
        assert_eq!(reply.status, 401, "{old}");
        assert_eq!(
            reply.json(),
            json!({"error_summary": "expired_access_token/..", "error": {".tag": "expired_access_token"}})
        );
    }
    let fresh = token(&emu, &refresh_form).json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(list(&emu, &fresh).status, 200);

    // Tokens issued by /oauth2/token expire with the (emulated) clock.
    emu.advance_clock(Duration::from_secs(4 * 3600));
    assert_eq!(tag(&list(&emu, &fresh)), "expired_access_token");
    let unknown = token(
        &emu,
        "grant_type=refresh_token&refresh_token=nope&client_id=test-app-key",
    );
    assert_eq!(
        (unknown.status, unknown.json()["error"].clone()),
        (400, json!("invalid_grant"))
    );
}

#[test]
fn bearer_checks_and_revoke() {
    let emu = Emulator::start(Config {
        static_tokens: vec!["static".into()],
        refresh_tokens: vec!["seeded".into()],
        ..Config::default()
    })
    .unwrap();
    let mut conn = Conn::open(&emu);
    let missing = conn.send("POST", LIST, &[], b"{\"path\": \"\"}").unwrap();
    assert_eq!(missing.status, 400);
    let basic = conn
        .send(
            "POST",
            LIST,
            &[("Authorization", b"Basic abc")],
            b"{\"path\": \"\"}",
        )
        .unwrap();
    assert_eq!(basic.status, 400);
    let unknown = conn.rpc(LIST, TOKEN, &json!({"path": ""})).unwrap();
    assert_eq!(unknown.status, 401);
    assert_eq!(
        unknown.json(),
        json!({"error_summary": "invalid_access_token/..", "error": {".tag": "invalid_access_token"}})
    );
    assert_eq!(
        conn.rpc(LIST, "static", &json!({"path": ""}))
            .unwrap()
            .status,
        200
    );

    let grant = token(
        &emu,
        "grant_type=refresh_token&refresh_token=seeded&client_id=test-app-key",
    )
    .json();
    let access = grant["access_token"].as_str().unwrap().to_owned();
    let revoked = conn
        .send(
            "POST",
            "/2/auth/token/revoke",
            &[("Authorization", format!("Bearer {access}").as_bytes())],
            b"",
        )
        .unwrap();
    assert_eq!((revoked.status, revoked.text().as_str()), (200, "null"));
    assert_eq!(tag(&list(&emu, &access)), "invalid_access_token");
    let again = token(
        &emu,
        "grant_type=refresh_token&refresh_token=seeded&client_id=test-app-key",
    );
    assert_eq!(again.json()["error"], "invalid_grant");
    // Static tokens are unaffected by another token's revocation.
    assert_eq!(list(&emu, "static").status, 200);
    assert_eq!(
        token(&emu, "grant_type=password&client_id=test-app-key").status,
        400
    );
}
