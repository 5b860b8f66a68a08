//! The operator console, embedded: the files `npm run build` made from
//! `console/` (see build.rs), served from memory.
//!
//! [`serve`] answers a GET for any path outside the API: a built file with its
//! content type (gzip when the client takes it), hashed assets cached for a
//! year, and `index.html` for every other path, because the console routes on
//! the client (`/devices/901700000000001` is a page, not a file).

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;

/// One built file.
pub struct Asset {
    /// Its URL path, e.g. "/assets/index-3f2a1b.js".
    pub path: &'static str,
    pub body: &'static [u8],
    /// The gzip form, when it is worth it.
    pub gzip: Option<&'static [u8]>,
    pub content_type: &'static str,
    /// A quoted strong ETag of the body.
    pub etag: &'static str,
    /// Named by content hash: it never changes under its name.
    pub immutable: bool,
}

static ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// Every embedded file.
pub fn assets() -> &'static [Asset] {
    ASSETS
}

/// The embedded file at `path`, if there is one.
pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// The console's page: what a client-side route is answered with.
pub fn index() -> Option<&'static Asset> {
    asset("/index.html")
}

/// Content-Security-Policy of the console: everything from this origin, no
/// inline script, no framing (the console acts on devices: no clickjacking).
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// Answers a request for `uri` (GET or HEAD; anything else is 405).
pub fn serve(method: &Method, uri: &Uri, headers: &HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    let path = uri.path();
    let found = match asset(path) {
        Some(a) if a.path != "/index.html" => Some(a),
        // A path whose last segment has a dot names a file that does not
        // exist: a 404 is more useful than the page for a broken link.
        _ if last_segment_has_dot(path) => None,
        _ => index(),
    };
    let Some(a) = found else {
        return plain(StatusCode::NOT_FOUND, "not found");
    };
    let mut b = Response::builder()
        .header(header::CONTENT_TYPE, a.content_type)
        .header(header::ETAG, a.etag)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::REFERRER_POLICY, "same-origin")
        .header(header::VARY, "Accept-Encoding")
        .header(
            header::CACHE_CONTROL,
            if a.immutable {
                "public, max-age=31536000, immutable"
            } else {
                // The page names the current hashed assets: always revalidate.
                "no-cache"
            },
        );
    if a.content_type.starts_with("text/html") {
        b = b
            .header(header::CONTENT_SECURITY_POLICY, CSP)
            .header(header::X_FRAME_OPTIONS, "DENY");
    }
    if etag_matches(headers, a.etag) {
        return b
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "response"));
    }
    let (body, gz) = match a.gzip {
        Some(z) if accepts_gzip(headers) => (z, true),
        _ => (a.body, false),
    };
    if gz {
        b = b.header(header::CONTENT_ENCODING, "gzip");
    }
    b = b.header(header::CONTENT_LENGTH, body.len());
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(body)
    };
    b.status(StatusCode::OK)
        .body(body)
        .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "response"))
}

fn plain(code: StatusCode, text: &'static str) -> Response {
    let mut r = Response::new(Body::from(text));
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn last_segment_has_dot(path: &str) -> bool {
    path.rsplit('/').next().is_some_and(|s| s.contains('.'))
}

fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/") == etag)
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|enc| {
            let mut parts = enc.split(';');
            let name = parts.next().unwrap_or("").trim();
            // "gzip;q=0" refuses it.
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn get(path: &str, headers: &[(&str, &str)]) -> Response {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        serve(&Method::GET, &path.parse().unwrap(), &h)
    }

    fn hdr(r: &Response, name: header::HeaderName) -> &str {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    #[test]
    fn the_page_is_embedded_and_names_its_assets() {
        let page = std::str::from_utf8(index().expect("index.html").body).unwrap();
        assert!(page.contains("/assets/"), "{page}");
        let js = assets()
            .iter()
            .find(|a| a.path.starts_with("/assets/") && a.path.ends_with(".js"))
            .expect("a script");
        assert!(page.contains(js.path) || assets().len() > 2);
    }

    #[test]
    fn client_routes_get_the_page_and_files_their_type() {
        for p in ["/", "/devices", "/devices/901700000000001", "/map?x=1"] {
            let r = get(p, &[]);
            assert_eq!(r.status(), StatusCode::OK, "{p}");
            assert_eq!(hdr(&r, header::CONTENT_TYPE), "text/html; charset=utf-8");
            assert_eq!(hdr(&r, header::CACHE_CONTROL), "no-cache");
            assert!(hdr(&r, header::CONTENT_SECURITY_POLICY).contains("frame-ancestors 'none'"));
        }
        let js = assets()
            .iter()
            .find(|a| a.path.ends_with(".js"))
            .expect("a script");
        let r = get(js.path, &[]);
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            hdr(&r, header::CONTENT_TYPE),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            hdr(&r, header::CACHE_CONTROL),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(
            get("/assets/nope-123.js", &[]).status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(get("/favicon.nope", &[]).status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn gzip_when_accepted_and_304_on_a_matching_etag() {
        let a = assets()
            .iter()
            .find(|a| a.gzip.is_some())
            .expect("a compressed asset");
        let r = get(a.path, &[("accept-encoding", "br, gzip;q=0.8")]);
        assert_eq!(hdr(&r, header::CONTENT_ENCODING), "gzip");
        let r = get(a.path, &[("accept-encoding", "gzip;q=0")]);
        assert_eq!(hdr(&r, header::CONTENT_ENCODING), "");
        let r = get(a.path, &[("if-none-match", a.etag)]);
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        let r = serve(&Method::POST, &"/".parse().unwrap(), &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
}
