//! The chat page at `GET /ui`: one self-contained HTML file (`ui/index.html`: inline CSS
//! and JavaScript, no external asset, no build step) embedded in the binary. It uses
//! the Ollama API of the same server (`/api/tags`, streamed `/api/chat`).
//!
//! `GET /` keeps answering "Ollama is running" to everyone: clients probe it, so the
//! page lives at its own path rather than behind content negotiation.

use axum::http::header;
use axum::response::IntoResponse;

const PAGE: &str = include_str!("ui/index.html");

/// What the page may load and call: only this server (inline script and style are the
/// page itself). A browser refuses anything else, which also shows it needs no network.
const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                   connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

/// `GET /ui`.
pub async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        PAGE,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        let p = super::PAGE;
        for needle in [
            "src=\"http",
            "href=\"http",
            "@import",
            "url(http",
            "<link rel=\"stylesheet",
        ] {
            assert!(
                !p.contains(needle),
                "the page references an external asset: {needle}"
            );
        }
        assert!(p.contains("/api/chat") && p.contains("/api/tags"));
    }
}
