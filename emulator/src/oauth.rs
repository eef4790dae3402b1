//! The OAuth 2 endpoints: `/oauth2/authorize` (auto-approving) and `/oauth2/token`
//! (PKCE code exchange and refresh).

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::http::{parse_form, Request, Response};
use crate::server::Shared;

/// Scopes reported for tokens obtained by code exchange.
const SCOPE: &str = "files.content.write files.metadata.read";

/// Unpadded base64url (RFC 4648 §5).
pub(crate) fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let group = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        // One output character per 6 bits of input: 2, 3 or 4 characters.
        for i in 0..=chunk.len() {
            let index = (group >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
}

/// The S256 PKCE challenge of `verifier`.
pub(crate) fn pkce_challenge(verifier: &str) -> String {
    base64url(&Sha256::digest(verifier.as_bytes()))
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// `GET /oauth2/authorize`: approves at once and answers with the authorization code.
pub(crate) fn authorize(shared: &Shared, req: &Request) -> Response {
    if req.method != "GET" {
        return Response::text(405, "Only GET is supported");
    }
    let params = parse_form(&req.query);
    let mut state = shared.lock();
    if param(&params, "client_id") != Some(state.app_key.as_str()) {
        return Response::text(400, "Invalid client_id");
    }
    if param(&params, "response_type") != Some("code") {
        return Response::text(400, "Invalid response_type: expected \"code\"");
    }
    let Some(challenge) = param(&params, "code_challenge").filter(|c| !c.is_empty()) else {
        return Response::text(400, "Missing code_challenge (the emulator requires PKCE)");
    };
    if param(&params, "code_challenge_method") != Some("S256") {
        return Response::text(400, "Invalid code_challenge_method: expected \"S256\"");
    }
    let code = state.issue_auth_code(challenge.to_owned());
    Response::text(200, code)
}

fn oauth_error(error: &str, description: &str) -> Response {
    Response::json(
        400,
        &json!({"error": error, "error_description": description}),
    )
}

/// `POST /oauth2/token`.
pub(crate) fn token(shared: &Shared, req: &Request) -> Response {
    if req.method != "POST" {
        return Response::text(405, "Only POST is supported");
    }
    if req.body_too_large {
        return oauth_error("invalid_request", "request body too large");
    }
    let params = parse_form(&String::from_utf8_lossy(&req.body));
    let mut state = shared.lock();
    if param(&params, "client_id") != Some(state.app_key.as_str()) {
        return oauth_error("invalid_client", "Invalid client_id or client_secret");
    }
    let expires_in = state.access_token_ttl.as_secs();
    match param(&params, "grant_type") {
        Some("authorization_code") => {
            let code = param(&params, "code").unwrap_or_default();
            let Some(challenge) = state.auth_code_challenge(code) else {
                return oauth_error("invalid_grant", "code doesn't exist or has expired");
            };
            let verifier = param(&params, "code_verifier").unwrap_or_default();
            if pkce_challenge(verifier) != challenge {
                return oauth_error("invalid_grant", "invalid code verifier");
            }
            state.consume_auth_code(code);
            let refresh_token = state.issue_refresh_token();
            let access_token = state.issue_access_token(Some(refresh_token.clone()));
            Response::json(
                200,
                &json!({
                    "access_token": access_token,
                    "token_type": "bearer",
                    "expires_in": expires_in,
                    "refresh_token": refresh_token,
                    "scope": SCOPE,
                    "uid": "1",
                    "account_id": "dbid:emulator",
                }),
            )
        }
        Some("refresh_token") => {
            let refresh_token = param(&params, "refresh_token").unwrap_or_default();
            if !state.refresh_token_valid(refresh_token) {
                return oauth_error("invalid_grant", "refresh token is invalid or revoked");
            }
            let access_token = state.issue_access_token(Some(refresh_token.to_owned()));
            Response::json(
                200,
                &json!({"access_token": access_token, "token_type": "bearer", "expires_in": expires_in}),
            )
        }
        _ => oauth_error(
            "unsupported_grant_type",
            "grant_type must be authorization_code or refresh_token",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_rfc4648_vectors() {
        let cases: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"f", "Zg"),
            (b"fo", "Zm8"),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg"),
            (b"fooba", "Zm9vYmE"),
            (b"foobar", "Zm9vYmFy"),
        ];
        for (input, expected) in cases {
            assert_eq!(base64url(input), expected);
        }
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn pkce_rfc7636_example() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
