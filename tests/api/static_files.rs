//! The page at `/`, 404 for unknown paths, and no way out of the static folder.

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_page_is_served_at_the_root() {
    let app = spawn_app().await;
    let response = app.get("/").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page = response.text().await.unwrap();
    assert!(page.contains("new EventSource("), "not the demo page");
    assert!(page.contains("addEventListener(\"bye\""));
    app.stop().await;
}

#[tokio::test]
async fn unknown_paths_get_404() {
    let app = spawn_app().await;
    for path in ["/nope", "/nope.html", "/digits/extra"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(response.text().await.unwrap(), "not found\n");
    }
    app.stop().await;
}

/// Each attempt names a file outside `static/` that exists (the crate's `Cargo.toml`, the
/// system's `/etc/passwd`); none may come back. Dot segments resolve inside the folder and
/// so find nothing (404); what the HTTP parser or actix-files refuse outright (backslashes,
/// encoded slashes, `.` segments, hidden files) gets 400.
#[tokio::test]
async fn traversal_attempts_never_escape_the_static_folder() {
    let app = spawn_app().await;
    let attempts = [
        ("/../Cargo.toml", 404),
        ("/../../../../etc/passwd", 404),
        ("/%2e%2e/Cargo.toml", 404),
        ("/%2E%2E/%2E%2E/etc/passwd", 404),
        ("/..%2fCargo.toml", 400),
        ("/%2e%2e%2fCargo.toml", 400),
        ("/..\\Cargo.toml", 400),
        ("/..%5cCargo.toml", 400),
        ("//etc/passwd", 404),
        ("/./index.html", 400),
        ("/.git/config", 400),
    ];
    for (path, status) in attempts {
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let response = app.raw(request.as_bytes()).await;
        assert_eq!(response.status, status, "{path}: {}", response.head);
        assert!(
            !response.body.contains("[package]") && !response.body.contains("root:"),
            "{path} escaped: {}",
            response.body
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn the_folder_is_not_listed() {
    let app = spawn_app().await;
    let response = app
        .raw(b"GET /index.html/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    assert!(!response.body.contains("<a href"), "{response:?}");
    app.stop().await;
}
