//! The feed and the bundles fetched from a real HTTP server on loopback: a download that the
//! server cut off resumes where it stopped, and nothing it is not asked for is written.

#![allow(clippy::unwrap_used)] // A test: a panic is the failure report.

use daisee_update::server::Server;
use daisee_update::{FetchError, Fetcher, Running, Url, Version, bundle_file};

/// A bundle of `len` bytes that are not all alike, and the feed offering it.
fn site(dir: &std::path::Path, len: usize, feed_size: usize) -> Server {
    let bundle: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.join("b.raucb"), bundle).unwrap();
    let feed = format!(
        r#"{{"bundles": [{{"version": "2.0", "compatible": "pc", "channels": ["stable"], "url": "b.raucb", "size": {feed_size}}}]}}"#
    );
    std::fs::write(dir.join("feed.json"), feed).unwrap();
    let server = Server::start().unwrap();
    server.put("/feed.json", dir.join("feed.json"));
    server.put("/b.raucb", dir.join("b.raucb"));
    server
}

fn url(server: &Server, path: &str) -> Url {
    format!("http://127.0.0.1:{}{path}", server.port())
        .parse()
        .unwrap()
}

fn running(version: &Version) -> Running<'_> {
    Running {
        compatible: "pc",
        channel: "stable",
        version,
        skipped: &[],
        refused: &[],
    }
}

#[tokio::test]
async fn a_download_cut_off_by_the_server_resumes_where_it_stopped() {
    let served = tempfile::tempdir().unwrap();
    let size = 3 << 20;
    let server = site(served.path(), size, size);
    let fetcher = Fetcher::new(None).unwrap();
    let feed = fetcher.feed(&url(&server, "/feed.json")).await.unwrap();
    let installed: Version = "1.0".parse().unwrap();
    let offer = feed.update_for(running(&installed)).unwrap().clone();

    let downloads = tempfile::tempdir().unwrap();
    let dir = downloads.path().join("bundles");
    let feed_bytes = server.body_bytes();
    server.vanish_after(1 << 20);
    let e = fetcher.download(&offer, &dir, |_| {}).await.unwrap_err();
    assert!(matches!(e, FetchError::Transfer { .. }), "{e}");
    assert!(server.vanished());
    // Gone: not even a connection.
    let e = fetcher.download(&offer, &dir, |_| {}).await.unwrap_err();
    assert!(matches!(e, FetchError::Transfer { .. }), "{e}");
    // Withdrawn (the QEMU tests' faster vanishing): cut off, then an HTTP error; the part kept.
    server.come_back();
    server.withdraw_after(0);
    fetcher.download(&offer, &dir, |_| {}).await.unwrap_err();
    let e = fetcher.download(&offer, &dir, |_| {}).await.unwrap_err();
    assert!(
        matches!(e, FetchError::Status { status, .. } if status == 404),
        "{e}"
    );

    server.come_back();
    let mut seen = Vec::new();
    let file = fetcher
        .download(&offer, &dir, |held| seen.push(held))
        .await
        .unwrap();
    assert_eq!(file, bundle_file(&dir, &offer));
    assert_eq!(
        std::fs::read(&file).unwrap(),
        std::fs::read(served.path().join("b.raucb")).unwrap()
    );
    assert_eq!(
        seen.first(),
        Some(&(1 << 20)),
        "resumed at the first megabyte"
    );
    assert_eq!(seen.last(), Some(&(size as u64)));
    assert_eq!(
        server.body_bytes() - feed_bytes,
        size as u64,
        "no byte sent twice"
    );
    assert!(
        server
            .requests()
            .contains(&"GET /b.raucb bytes=1048576-".to_owned()),
        "{:?}",
        server.requests()
    );
    // Only the finished bundle is left, readable by the agent alone.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["daisee-2.0.raucb"]);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    // Done already: nothing fetched again.
    fetcher.download(&offer, &dir, |_| {}).await.unwrap();
    assert_eq!(server.body_bytes() - feed_bytes, size as u64);
    daisee_update::remove_downloads(&dir).unwrap();
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

#[tokio::test]
async fn a_bundle_larger_than_the_feed_says_is_not_written_past_its_size() {
    let served = tempfile::tempdir().unwrap();
    let server = site(served.path(), 200_000, 100_000);
    let fetcher = Fetcher::new(None).unwrap();
    let feed = fetcher.feed(&url(&server, "/feed.json")).await.unwrap();
    let installed: Version = "1.0".parse().unwrap();
    let offer = feed.update_for(running(&installed)).unwrap().clone();
    let downloads = tempfile::tempdir().unwrap();
    let e = fetcher
        .download(&offer, downloads.path(), |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            FetchError::Size {
                expected: 100_000,
                ..
            }
        ),
        "{e}"
    );
    let part = downloads.path().join("daisee-2.0.raucb.part");
    assert!(std::fs::metadata(part).unwrap().len() <= 100_000);
}

#[tokio::test]
async fn a_missing_feed_a_wrong_one_and_a_planted_link_are_errors() {
    let served = tempfile::tempdir().unwrap();
    let server = site(served.path(), 1000, 1000);
    let fetcher = Fetcher::new(None).unwrap();
    let e = fetcher
        .feed(&url(&server, "/nothing.json"))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}: the server answered 404 Not Found",
            url(&server, "/nothing.json")
        )
    );
    std::fs::write(served.path().join("feed.json"), "<html>").unwrap();
    let e = fetcher.feed(&url(&server, "/feed.json")).await.unwrap_err();
    assert!(e.to_string().starts_with("the feed is not a feed"), "{e}");
    std::fs::write(served.path().join("feed.json"), vec![b' '; 2 << 20]).unwrap();
    let e = fetcher.feed(&url(&server, "/feed.json")).await.unwrap_err();
    assert!(e.to_string().contains("too large"), "{e}");
    let refused = Url::parse("http://127.0.0.1:1/feed.json").unwrap();
    assert!(matches!(
        fetcher.feed(&refused).await,
        Err(FetchError::Transfer { .. })
    ));

    let site = site(served.path(), 1000, 1000);
    let feed = fetcher.feed(&url(&site, "/feed.json")).await.unwrap();
    let installed: Version = "1.0".parse().unwrap();
    let offer = feed.update_for(running(&installed)).unwrap().clone();
    let downloads = tempfile::tempdir().unwrap();
    let target = served.path().join("elsewhere");
    std::fs::write(&target, "keep").unwrap();
    std::os::unix::fs::symlink(&target, downloads.path().join("daisee-2.0.raucb.part")).unwrap();
    // The download never writes through a link planted where its part goes.
    let e = fetcher
        .download(&offer, downloads.path(), |_| {})
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("Too many levels of symbolic links"),
        "{e}"
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
}
